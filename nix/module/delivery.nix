# Part of modules/aux-secrets.nix: delivery beyond ssh (docs/transports/).
#
#   aux.delivery.pull       a timer that fetches this host's bundle from a publish
#                           directory (`aux-secrets provision --publish DIR`, served over
#                           HTTP(S) or reached as a path) and takes it in when it is newer.
#                           Only the timer starts it, 5 minutes after boot at the earliest:
#                           boot installs from the local store without network.
#   aux.delivery.incoming   a path unit that takes in a bundle dropped into
#                           storeDir/incoming/HOST.age (a copy transport, colmena's
#                           deployment.keys, a deploy-rs hook), and a oneshot wanted by
#                           multi-user.target for one that arrived before the switch.
#
# Both run `aux-secrets pull`, so a fetched or dropped bundle is checked exactly as an
# ssh-delivered one (host key, signer, host, serial), and the same bundle twice is no change.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.aux;
  settings = cfg.settings;
  pull = cfg.delivery.pull;
  incoming = cfg.delivery.incoming;
  aux-secrets = lib.getExe settings.package;
  manifestFile = config.system.build.auxSecretsManifest;
  incomingDir = "${settings.storeDir}/incoming";
  enabled = cfg.secrets != { } || cfg.templates != { };
in
{
  options.aux.delivery = {
    pull = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Pull this host's bundle from a publish directory on a timer.";
      };
      source = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://secrets.example.org/fleet/";
        description = ''
          The publish directory: an http(s) URL or a path; this host's file is
          SOURCE/HOST.age. It ends up in the Nix store, so never put credentials here: a
          URL with `user:password@` goes in `environmentFile`.
        '';
      };
      environmentFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/etc/aux-secrets/pull.env";
        description = "A file outside the Nix store holding `AUX_SECRETS_PULL_SOURCE=URL`.";
      };
      interval = mkOption {
        type = types.str;
        default = "15min";
        description = "Time between pulls (systemd.time(7)); an unchanged source costs one request.";
      };
      randomizedDelay = mkOption {
        type = types.str;
        default = "5min";
        description = "Spread of each pull, so a fleet does not ask at once.";
      };
      trustFirstSigner = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Accept the signer of the first pulled bundle when `aux.settings.bundleSigners`
          is empty. A publish directory is untrusted storage: pin the signer instead.
        '';
      };
    };
    incoming.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Take in bundles dropped into `storeDir`/incoming (copy transports, colmena, deploy-rs).";
    };
  };

  config = lib.mkIf enabled (
    lib.mkMerge [
      (lib.mkIf pull.enable {
        assertions = [
          {
            assertion = (pull.source == null) != (pull.environmentFile == null);
            message = "aux.delivery.pull: set exactly one of source and environmentFile";
          }
          {
            assertion = pull.trustFirstSigner || settings.bundleSigners != [ ];
            message = "aux.delivery.pull: pin aux.settings.bundleSigners (the output of `aux-secrets signer`), or set trustFirstSigner";
          }
        ];
        systemd.services.aux-secrets-pull = {
          description = "Pull this host's aux-secrets bundle from its publish directory";
          wants = [ "network-online.target" ];
          after = [ "network-online.target" "aux-secrets-install.service" ];
          unitConfig.RequiresMountsFor = [ settings.storeDir ];
          environment = lib.optionalAttrs (pull.source != null) {
            AUX_SECRETS_PULL_SOURCE = pull.source;
          };
          serviceConfig = {
            Type = "oneshot";
            UMask = "0077";
            ExecStart = "${aux-secrets} pull --manifest ${manifestFile}"
              + lib.optionalString pull.trustFirstSigner " --trust-first-signer";
          } // lib.optionalAttrs (pull.environmentFile != null) {
            EnvironmentFile = pull.environmentFile;
          };
        };
        systemd.timers.aux-secrets-pull = {
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnBootSec = "5min";
            OnUnitActiveSec = pull.interval;
            RandomizedDelaySec = pull.randomizedDelay;
            AccuracySec = "1min";
          };
        };
      })
      (lib.mkIf incoming.enable {
        systemd.paths.aux-secrets-incoming = {
          wantedBy = [ "paths.target" ];
          pathConfig = {
            PathChanged = incomingDir;
            MakeDirectory = true;
            DirectoryMode = "0700";
          };
        };
        systemd.services.aux-secrets-incoming = {
          description = "Take in an aux-secrets bundle dropped into ${incomingDir}";
          wantedBy = [ "multi-user.target" ];
          after = [ "aux-secrets-install.service" ];
          unitConfig = {
            RequiresMountsFor = [ settings.storeDir ];
            ConditionDirectoryNotEmpty = incomingDir;
          };
          serviceConfig = {
            Type = "oneshot";
            UMask = "0077";
            # Writing there needs root on this host, as ssh delivery does.
            ExecStart = "${aux-secrets} pull --trust-first-signer --manifest ${manifestFile} ${incomingDir}";
          };
        };
      })
    ]
  );
}
