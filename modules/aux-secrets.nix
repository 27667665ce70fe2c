# NixOS module for aux-secrets: options -> manifest (/etc/aux-secrets/manifest.json), the
# units (or activation scripts) that install secrets at boot and when a switch changes
# them, and assertions.
#
# The module decides everything at build time; `aux-secrets install` reads only the
# manifest and the local store. The cfg -> manifest function (../nix/manifest.nix) and the
# assertions (../nix/checks.nix) use builtins only, so CI checks them against the golden
# manifests without nixpkgs. No option takes a secret value.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  cfg = config.aux;
  settings = cfg.settings;

  TYPES = [ "pass" "raw" "ed25519" "x25519" "ec256" "ec384" "ec521" "rsa2048" "rsa4096" ];
  CHARSETS = [ "gokey" "alnum" "urlsafe" "hex" "base64" "digits" ];
  PERIODS = [ "daily" "weekly" "monthly" "quarterly" "yearly" ];

  unitsOption =
    verb:
    mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "nginx.service" ];
      description = "Units to ${verb} when this file changes or first appears (full unit names).";
    };

  # The primary group of a declared user, as sops-nix and agenix default it.
  primaryGroup =
    owner:
    let
      user = lib.findFirst (u: u.name == owner) null (builtins.attrValues config.users.users);
    in
    if user != null && user.group != "" then user.group else "root";

  fileOptions = defaultPath: {
    path = mkOption {
      type = types.str;
      default = defaultPath.value;
      defaultText = lib.literalMD defaultPath.text;
      description = "Where the file is installed. Outside `aux.settings.runtimeDir` it is a symlink into the active generation.";
    };
    owner = mkOption {
      type = types.str;
      default = "root";
      description = "User that owns the file: a name declared in `users.users`, or a numeric uid.";
    };
    group = mkOption {
      type = types.str;
      default = primaryGroup defaultPath.owner;
      defaultText = lib.literalMD "the primary group of `owner` (`users.users.<owner>.group`), `root` for a numeric owner";
      description = "Group of the file: a name declared in `users.groups`, or a numeric gid.";
    };
    mode = mkOption {
      type = types.str;
      default = "0400";
      description = "Permissions, four octal digits.";
    };
    restartUnits = unitsOption "try-restart";
    reloadUnits = unitsOption "try-reload-or-restart";
  };

  rotationType = types.submodule {
    options = {
      period = mkOption {
        type = types.enum PERIODS;
        description = "Rotation period; fills `{period}` in the realm (UTC).";
      };
      retired = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "How many earlier periods stay available as `retired` values.";
      };
      ahead = mkOption {
        type = types.ints.unsigned;
        default = 0;
        description = "How many later periods the bundle carries ahead of time (so a boundary passes without the operator).";
      };
    };
  };

  deriveType = types.submodule {
    options = {
      realm = mkOption {
        type = types.str;
        example = "db/web1";
        description = "Public name the secret is derived from. Contains `{period}` when `rotation` is set.";
      };
      type = mkOption {
        type = types.enum TYPES;
        default = "pass";
        description = "What the derived bytes become.";
      };
      length = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Length for `pass` (characters) and `raw` (bytes); null for the type's default.";
      };
      charset = mkOption {
        type = types.enum CHARSETS;
        default = "gokey";
        description = "Characters of a `pass` secret.";
      };
      encoding = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "openssh";
        description = "Encoding of the output (see docs/spec/derivation.md); null for the type's default.";
      };
      public = mkOption {
        type = types.bool;
        default = false;
        description = "Install only the public half of a key.";
      };
      rotation = mkOption {
        type = types.nullOr rotationType;
        default = null;
        description = "Rotate by period: the realm's `{period}` names the current, retired and ahead values.";
      };
    };
  };

  secretType = types.submodule (
    { name, config, ... }:
    {
      options = {
        derive = mkOption {
          type = types.nullOr deriveType;
          default = null;
          description = "Derive the secret from the vault's master secret and a realm. Set this or `store`.";
        };
        store = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "github/ci-token";
          description = "Name of a fixed secret in the vault's store (an imported token). Set this or `derive`.";
        };
        storeRetired = mkOption {
          type = types.ints.between 0 8;
          default = 0;
          example = 1;
          description = "With `store`: how many of its retired values (kept by `store set --keep`) the host also gets, for services that accept an old and a new token during a rollover. 0 (the default): none, so a replaced (leaked) value is not delivered on.";
        };
        format = mkOption {
          type = types.enum [ "value" "env" "json" "yaml" "toml" ];
          default = "value";
          description = "`value` writes the bytes as they are; the others wrap the value under `envName`.";
        };
        envName = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "Variable or key name for the env/json/yaml/toml formats; null for the name upper-cased (`db/password` -> `DB_PASSWORD`).";
        };
        neededForUsers = mkOption {
          type = types.bool;
          default = false;
          description = "Install before users exist (for `users.users.<name>.hashedPasswordFile`); owner and group must stay root.";
        };
        credential = mkOption {
          type = types.nullOr (
            types.submodule {
              options = {
                name = mkOption {
                  type = types.nullOr types.str;
                  default = null;
                  description = "Credential name; null for the secret name with `/` as `-`.";
                };
                units = mkOption {
                  type = types.listOf types.str;
                  default = [ ];
                  example = [ "restic-backups-b2.service" ];
                  description = "Services that get `LoadCredentialEncrypted=` for this secret.";
                };
              };
            }
          );
          default = null;
          description = "Also seal the secret as a systemd credential for the listed services (works with `DynamicUser=`; no plaintext in /run).";
        };
      }
      // fileOptions {
        value = "${if config.neededForUsers then settings.usersDir else settings.runtimeDir}/${name}";
        text = "`aux.settings.runtimeDir`/NAME (`aux.settings.usersDir`/NAME with `neededForUsers`)";
        inherit (config) owner;
      };
    }
  );

  templateType = types.submodule (
    { name, config, ... }:
    {
      options = {
        content = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = lib.literalExpression ''"password=''${config.aux.placeholder.db}"'';
          description = "Text with placeholders from `config.aux.placeholder`. Set this or `file`.";
        };
        file = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "File whose text (with `{{aux:NAME:FIELD}}` placeholders) is the template. Set this or `content`.";
        };
        format = mkOption {
          type = types.enum [ "text" "env" "json" "yaml" "toml" ];
          default = "text";
          description = "How values are escaped where they are substituted.";
        };
      }
      // fileOptions {
        value = "${settings.runtimeDir}/templates/${name}";
        text = "`aux.settings.runtimeDir`/templates/NAME";
        inherit (config) owner;
      };
    }
  );

  placeholderFor = name: {
    __toString = _: "{{aux:${name}}}";
    current = "{{aux:${name}:current}}";
    retired = "{{aux:${name}:retired}}";
    public = "{{aux:${name}:public}}";
  };

  # The option values ../nix/manifest.nix reads (it refuses attributes it does not know).
  # The installer always runs systemctl with --no-block: a blocking restart from a unit in
  # the switch's reactivation transaction would wait on that same transaction.
  manifestInput = {
    inherit (cfg) host secrets templates;
    settings = builtins.removeAttrs settings [
      "package"
      "validationPackage"
      "useTmpfs"
      "useSystemdActivation"
    ] // {
      systemctl = settings.systemctl ++ lib.optional (!builtins.elem "--no-block" settings.systemctl) "--no-block";
    };
  };
  manifest = import ../nix/manifest.nix manifestInput;

  # Checked at build time by a package for the build platform (cross builds work).
  manifestFile = pkgs.writeTextFile {
    name = "aux-secrets-manifest.json";
    text = builtins.toJSON manifest;
    checkPhase = ''
      ${lib.getExe settings.validationPackage} manifest check "$target"
    '';
  };

  sameBuildAndHost = pkgs.stdenv.buildPlatform.system == pkgs.stdenv.hostPlatform.system;
in
{
  options.aux = {
    secrets = mkOption {
      type = types.attrsOf secretType;
      default = { };
      description = "Secrets this host needs. Names are `/`-separated paths of letters, digits, `_`, `.`, `-`.";
    };

    templates = mkOption {
      type = types.attrsOf templateType;
      default = { };
      description = "Files rendered from secrets at install time (config files, environment files).";
    };

    placeholder = mkOption {
      type = types.attrsOf types.raw;
      readOnly = true;
      default = lib.mapAttrs (name: _: placeholderFor name) cfg.secrets;
      defaultText = lib.literalMD "`{{aux:NAME}}` strings for every secret";
      description = ''
        Placeholders for templates: `"''${config.aux.placeholder.db}"` is the current value,
        `.current`, `.retired` (the retired values, joined as the template format says) and
        `.public` (the public half of a key) the fields.
      '';
    };

    manifest = mkOption {
      type = types.attrsOf types.raw;
      readOnly = true;
      default = manifest;
      defaultText = lib.literalMD "the manifest generated from `aux.secrets`, `aux.templates` and `aux.settings`";
      description = ''
        The manifest as a value, for tools that evaluate instead of build:
        `nix eval --json .#nixosConfigurations.web1.config.aux.manifest > web1.json`.
      '';
    };

    host = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      description = "Host name bundles for this machine are made for.";
    };

    settings = {
      package = mkOption {
        type = types.package;
        default = pkgs.aux-secrets or (pkgs.callPackage ../nix/package.nix { });
        defaultText = lib.literalExpression "pkgs.aux-secrets or (pkgs.callPackage ./nix/package.nix { })";
        description = "The aux-secrets package, built with the system's own nixpkgs; it is put on the host's PATH (provision, activate and status run it there).";
      };
      validationPackage = mkOption {
        type = types.package;
        default =
          if sameBuildAndHost then
            settings.package
          else
            pkgs.buildPackages.aux-secrets or (pkgs.buildPackages.callPackage ../nix/package.nix { });
        defaultText = lib.literalMD "`package`, or the same package for the build platform when cross-compiling";
        description = "The package that runs `aux-secrets manifest check` while the system is built.";
      };
      runtimeDir = mkOption {
        type = types.str;
        default = "/run/aux-secrets";
        description = "Symlink to the active generation; default home of secret files.";
      };
      generationsDir = mkOption {
        type = types.str;
        default = "/run/aux-secrets.d";
        description = "Where generations live; mounted as a RAM filesystem by this module.";
      };
      usersDir = mkOption {
        type = types.str;
        default = "/run/aux-secrets-for-users";
        description = "Tree of `neededForUsers` secrets (generations in `usersDir` + `.d`).";
      };
      storeDir = mkOption {
        type = types.str;
        default = "/var/lib/aux-secrets";
        description = "The local store: what the last bundle delivered, sealed. Must be mounted before the installer runs.";
      };
      backend = mkOption {
        type = types.enum [ "systemd-creds" "age" "plain" ];
        default = "systemd-creds";
        description = "How the local store is sealed: systemd-creds (host key and/or TPM2), age (the delivered bundle, opened with the ssh host key) or plain (root-only file; the weakest).";
      };
      tpm2 = {
        enable = mkOption {
          type = types.bool;
          default = false;
          description = "Seal systemd credentials with the TPM2 as well (`--with-key=host+tpm2`).";
        };
        hostKey = mkOption {
          type = types.bool;
          default = true;
          description = "With `tpm2.enable`, also bind to the host key; false seals to the TPM2 alone.";
        };
        device = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "TPM2 device; null lets systemd pick.";
        };
        pcrs = mkOption {
          type = types.str;
          default = "7";
          description = "PCRs the credentials are bound to, e.g. `7` or `0+7`.";
        };
      };
      hostKeys = mkOption {
        type = types.listOf types.str;
        default = lib.optionals config.services.openssh.enable (
          map (key: key.path) (lib.filter (key: key.type == "ed25519") config.services.openssh.hostKeys)
        );
        defaultText = lib.literalMD "the ed25519 keys of `services.openssh.hostKeys` when `services.openssh.enable`, else none";
        description = "Private keys that open bundles (the age backend keeps the bundle and opens it at every install).";
      };
      bundleSigners = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 aux-secrets-signer" ];
        description = ''
          Bundle signers this host accepts: the output of `aux-secrets signer` on the
          operator's machine (an `ssh-ed25519 AAAA...` line, or the base64 of the 32-byte
          key). Empty: the host trusts the signer of the first bundle it activates and
          refuses any other until `aux-secrets activate --trust-new-signer`.
        '';
      };
      keepGenerations = mkOption {
        type = types.ints.positive;
        default = 5;
        description = "Old generations kept in RAM.";
      };
      group = mkOption {
        type = types.str;
        default = "keys";
        description = "Group of the generation directories (mode 0751).";
      };
      systemctl = mkOption {
        type = types.listOf types.str;
        default = [ "systemctl" "--no-block" ];
        description = "Command prefix the installer uses to restart and reload units. `--no-block` is added when missing: a blocking restart from the install unit would wait on the very switch that runs it.";
      };
      useTmpfs = mkOption {
        type = types.bool;
        default = false;
        description = "Mount the generation directories as tmpfs with `noswap` (Linux 6.4 or later) instead of ramfs.";
      };
      useSystemdActivation = mkOption {
        type = types.bool;
        default =
          (options.systemd ? sysusers && config.systemd.sysusers.enable)
          || (options.services ? userborn && config.services.userborn.enable);
        defaultText = lib.literalExpression "config.systemd.sysusers.enable || config.services.userborn.enable";
        description = "Install from systemd units ordered in sysinit.target (needed with systemd-sysusers, userborn and nixos-init) instead of from the activation script.";
      };
    };
  };

  imports = [
    ../nix/module/accounts.nix
    ../nix/module/units.nix
    ../nix/module/delivery.nix
  ];

  config = lib.mkIf (cfg.secrets != { } || cfg.templates != { }) {
    assertions = import ../nix/checks.nix manifestInput;

    environment.etc."aux-secrets/manifest.json".source = manifestFile;
    system.build.auxSecretsManifest = manifestFile;

    # provision, activate and status run the CLI on the host.
    environment.systemPackages = [ settings.package ];
  };
}
