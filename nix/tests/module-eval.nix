# Evaluate modules/aux-secrets.nix with lib.evalModules and stub declarations of only the
# NixOS options it writes to (no nixpkgs packages needed). Used by tests/test_nix_module.py
# (with AUX_SECRETS_NIXPKGS_LIB) and by the flake's module-evaluation check.
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./nix/tests/module-eval.nix { lib = import LIB; configuration = ./host.nix; }'
{
  lib,
  configuration,
  # Stand-ins for the two packages the module touches; the flake passes real ones.
  pkgs ? null,
}:
let
  inherit (lib) mkOption types;

  fakeDrv = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // extra;

  stubPkgs = {
    stdenv.hostPlatform.system = "x86_64-linux";
    writeTextFile = args: fakeDrv args.name { inherit (args) text checkPhase; };
    callPackage = _: _: fakeDrv "aux-secrets" { };
  };

  # Lists concatenate, attribute sets merge, anything else must agree (like NixOS's units).
  deep = types.either (types.listOf types.anything) (types.either (types.attrsOf deep) types.anything);
  unit = types.submodule { freeformType = types.attrsOf deep; };
  option = type: default: mkOption { inherit type default; };

  stubs = {
    options = {
      assertions = option (types.listOf types.unspecified) [ ];
      warnings = option (types.listOf types.str) [ ];
      environment.etc = option (types.attrsOf (types.attrsOf types.anything)) { };
      system.build = option (types.lazyAttrsOf types.unspecified) { };
      system.activationScripts = option (types.attrsOf deep) { };
      fileSystems = option (types.attrsOf (types.attrsOf types.anything)) { };
      systemd.services = option (types.attrsOf unit) { };
      systemd.timers = option (types.attrsOf unit) { };
      systemd.sysusers.enable = option types.bool false;
      services.userborn.enable = option types.bool false;
      services.openssh.hostKeys = option (types.listOf (types.attrsOf types.anything)) [
        { type = "rsa"; bits = 4096; path = "/etc/ssh/ssh_host_rsa_key"; }
        { type = "ed25519"; path = "/etc/ssh/ssh_host_ed25519_key"; }
      ];
      networking.hostName = option types.str "nixos";
      users = option (types.attrsOf types.anything) { };
    };
    config._module.args.pkgs = if pkgs == null then stubPkgs else pkgs;
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
  fileSystems = config.fileSystems;
  activationScripts = pick [ "auxSecrets" "auxSecretsForUsers" "users" ] config.system.activationScripts;
  placeholder = lib.mapAttrs (name: p: {
    string = "${p}";
    inherit (p) current retired public;
  }) config.aux.placeholder;
}
