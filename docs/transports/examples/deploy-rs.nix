# deploy-rs nodes whose hosts get their aux-secrets bundle before the switch, with an
# activation hook that takes it in and fails the deployment when the host refuses it.
# docs/transports/deploy-rs.md explains it; tests/test_deployers.py evaluates this file
# with a stand-in for deploy-rs's lib and runs the hook's command.
#
# In a flake:  deploy = import ./deploy-rs.nix { inherit self pkgs; deploy-lib = deploy-rs.lib.x86_64-linux; };
# Before `deploy .#web1`, the operator copies the bundle into the host's incoming
# directory with the vault's copy transport:  aux-secrets provision --host web1
{
  self,
  pkgs,
  deploy-lib,
}:
let
  incoming = "/var/lib/aux-secrets/incoming";
  # The same command aux.delivery.incoming runs, as a profile activation: its exit
  # status is the deployment's (a refused bundle fails it; the same bundle twice is fine).
  takeIn = "aux-secrets pull --trust-first-signer --manifest /etc/aux-secrets/manifest.json ${incoming}";
in
{
  nodes.web1 = {
    hostname = "10.0.0.5";
    sshUser = "root";
    profilesOrder = [ "system" "aux-secrets" ];
    profiles.system = {
      user = "root";
      path = deploy-lib.activate.nixos self.nixosConfigurations.web1;
    };
    profiles.aux-secrets = {
      user = "root";
      path = deploy-lib.activate.custom pkgs.aux-secrets takeIn;
    };
  };
}
