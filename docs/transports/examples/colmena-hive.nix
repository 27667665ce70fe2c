# A colmena hive whose hosts get their aux-secrets bundle through deployment.keys.
# docs/transports/colmena.md explains it; tests/test_deployers.py evaluates this file
# and runs its keyCommand.
#
# On the operator's machine, before `colmena apply`:
#   aux-secrets agent unlock            (keyCommand runs without a terminal)
#   export AUX_SECRETS_VAULT=~/vault    (the vault; its hosts/web1.toml names the manifest)
let
  auxSecretsKey = name: {
    # Runs on the operator's machine at deploy time; its stdout is the key's content:
    # the bundle, sealed to the host, signed by the vault, with a fresh serial.
    keyCommand = [ "aux-secrets" "bundle" "--host" name "-o" "-" ];
    # Where aux.delivery.incoming watches; root-only, outside /run/keys (no keys group).
    destDir = "/var/lib/aux-secrets/incoming";
    name = "${name}.age";
    user = "root";
    group = "root";
    permissions = "0600";
    # Before the switch: the switch's aux-secrets-incoming.service (and, on a host that
    # already has it, the path unit) takes it in.
    uploadAt = "pre-activation";
  };
in
{
  meta.description = "aux-secrets over colmena deployment.keys";

  web1 =
    { name, ... }:
    {
      deployment.targetHost = "10.0.0.5";
      deployment.keys."aux-secrets-bundle" = auxSecretsKey name;
      aux.delivery.incoming.enable = true;
      aux.settings.bundleSigners = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 aux-secrets-signer"
      ];
    };
}
