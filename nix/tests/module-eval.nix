# Evaluate modules/aux-secrets.nix with lib.evalModules and stub declarations of the NixOS
# options it (and the VM test nodes) use: no nixpkgs packages needed. Used by
# tests/test_nix_module.py, tests/test_nix_units.py and tests/test_nix_vm.py (with
# AUX_SECRETS_NIXPKGS_LIB) and by the flake's module-evaluation check.
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./nix/tests/module-eval.nix { lib = import LIB; configuration = ./host.nix; }'
#
# The stubs declare options with NixOS's types where the module depends on them (users,
# groups, file systems, units) and repeat the upstream assertions the module relies on
# (nixos/modules/system/boot/systemd/sysusers.nix, services/system/userborn.nix), so a
# configuration NixOS refuses is refused here too.
{
  lib,
  configuration,
  # Stand-ins for the packages the module and the VM tests touch; the flake passes real ones.
  pkgs ? null,
}:
let
  inherit (lib) mkOption types;

  fakeDrv = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // extra;
  fakePackage = name: fakeDrv name { meta.mainProgram = name; };

  stubPkgs = {
    stdenv.hostPlatform.system = "x86_64-linux";
    stdenv.buildPlatform.system = "x86_64-linux";
    writeTextFile = args: fakeDrv args.name { inherit (args) text checkPhase; };
    writeShellScript = name: text: fakeDrv name { inherit text; };
    callPackage = _: _: fakePackage "aux-secrets";
    buildPackages.callPackage = _: _: fakePackage "aux-secrets-build";
  } // lib.genAttrs [ "coreutils" "util-linux" "jq" "mkpasswd" "tpm2-tools" ] fakePackage;

  # Lists concatenate, attribute sets merge, anything else must agree (like NixOS's units).
  deep = types.either (types.listOf types.anything) (types.either (types.attrsOf deep) types.anything);
  unit = types.submodule { freeformType = types.attrsOf deep; };
  option = type: default: mkOption { inherit type default; };
  enable = option types.bool false;

  user = types.submodule (
    { name, ... }:
    {
      freeformType = types.attrsOf types.anything;
      options = {
        name = option types.str name;
        group = option types.str "";
        isNormalUser = enable;
        isSystemUser = enable;
        hashedPasswordFile = option (types.nullOr types.str) null;
        initialHashedPassword = option (types.nullOr types.str) null;
      };
    }
  );
  group = types.submodule (
    { name, ... }:
    {
      freeformType = types.attrsOf types.anything;
      options.name = option types.str name;
    }
  );
  fileSystem = types.submodule (
    { name, ... }:
    {
      freeformType = types.attrsOf types.anything;
      options.mountPoint = option types.str name;
      options.neededForBoot = enable;
    }
  );

  stubs =
    { config, ... }:
    {
      options = {
        assertions = option (types.listOf types.unspecified) [ ];
        warnings = option (types.listOf types.str) [ ];
        environment.etc = option (types.attrsOf (types.attrsOf types.anything)) { };
        environment.systemPackages = option (types.listOf types.package) [ ];
        environment.variables = option (types.attrsOf types.str) { };
        system.build = option (types.lazyAttrsOf types.unspecified) { };
        system.activationScripts = option (types.attrsOf deep) { };
        system.nixos-init.enable = enable;
        system.etc.overlay.enable = enable;
        fileSystems = option (types.attrsOf fileSystem) { };
        systemd.services = option (types.attrsOf unit) { };
        systemd.timers = option (types.attrsOf unit) { };
        systemd.paths = option (types.attrsOf unit) { };
        systemd.sysusers.enable = enable;
        services.userborn.enable = enable;
        services.openssh.enable = enable;
        services.openssh.hostKeys = option (types.listOf (types.attrsOf types.anything)) [
          { type = "rsa"; bits = 4096; path = "/etc/ssh/ssh_host_rsa_key"; }
          { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; }
        ];
        services.timesyncd.enable = option types.bool true;
        networking.hostName = option types.str "nixos";
        users.users = option (types.attrsOf user) { };
        users.groups = option (types.attrsOf group) { };
        users.mutableUsers = option types.bool true;
        boot.initrd.systemd.enable = enable;
        virtualisation.tpm.enable = enable;
        # A specialisation's configuration is evaluated as its own system by NixOS; here it
        # is kept as written, and tests/test_nix_vm.py evaluates it merged into its node.
        specialisation = option (types.attrsOf (types.attrsOf types.anything)) { };
      };
      config = {
        _module.args.pkgs = if pkgs == null then stubPkgs else pkgs;
        # What nixos/modules/config/users-groups.nix always declares.
        users.users.root = { group = "root"; };
        users.users.nobody = { group = "nogroup"; };
        users.groups = lib.genAttrs [ "root" "wheel" "keys" "users" "nogroup" ] (_: { });
        assertions = [
          {
            assertion = !(config.systemd.sysusers.enable && config.services.userborn.enable);
            message = "You cannot use systemd-sysusers and Userborn at the same time";
          }
          {
            assertion = !(config.systemd.sysusers.enable || config.services.userborn.enable) || !(config.system.activationScripts ? users);
            message = "system.activationScripts.users has to be empty to use systemd-sysusers or userborn";
          }
        ]
        ++ lib.mapAttrsToList (name: u: {
          assertion = !config.systemd.sysusers.enable || !u.isNormalUser;
          message = "${name} is a normal user. systemd-sysusers doesn't create normal users, only system users.";
        }) config.users.users;
      };
    };

  evaluated = lib.evalModules {
    modules = [
      stubs
      ../../modules/aux-secrets.nix
      configuration
    ];
  };
  config = evaluated.config;
  manifestFile = config.system.build.auxSecretsManifest or null;
  pick = names: attrs: lib.filterAttrs (name: _: builtins.elem name names) attrs;
in
{
  inherit config;
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  manifest = if manifestFile == null then null else builtins.fromJSON manifestFile.text;
  manifestCheck = if manifestFile == null then null else manifestFile.checkPhase;
  etc = config.environment.etc;
  services = config.systemd.services;
  timers = config.systemd.timers;
  paths = config.systemd.paths;
  fileSystems = config.fileSystems;
  systemPackages = map (p: p.name) config.environment.systemPackages;
  activationScripts = pick [
    "auxSecrets"
    "auxSecretsForUsers"
    "auxSecretsDryActivate"
    "auxSecretsNotice"
    "users"
  ] config.system.activationScripts;
  mountScript = (config.system.build.auxSecretsMountScript or { text = null; }).text;
  placeholder = lib.mapAttrs (name: p: {
    string = "${p}";
    inherit (p) current retired public;
  }) config.aux.placeholder;
}
