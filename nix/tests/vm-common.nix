# Shared pieces of the NixOS VM tests: a node with the module (which puts the aux-secrets
# command on the host by itself), and a Python prelude for the test script that makes a
# vault on the node and provisions it locally.
{ self }:
{
  node =
    { lib, pkgs, ... }:
    {
      imports = [ self.nixosModules.default ];
      # Users by userborn, so the module installs from its systemd units.
      services.userborn.enable = lib.mkDefault true;
      services.openssh.enable = true; # its ed25519 host key opens the bundles
      environment.systemPackages = [ pkgs.jq ];
      environment.variables = {
        AUX_SECRETS_VAULT = "/root/vault";
        AUX_SECRETS_PASSWORD_FILE = "/root/master-password";
      };
      # A unit that uses the secrets; its InvocationID changes exactly when it restarts.
      systemd.services.demo = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${pkgs.coreutils}/bin/sleep infinity";
          ExecReload = "${pkgs.coreutils}/bin/true";
        };
      };
      users.users.app = {
        isSystemUser = true;
        group = "app";
      };
      users.groups.app = { };
    };

  # Python for the test script. `aux(...)` runs the CLI as root on the node.
  prelude = ''
    def aux(node, args):
        return node.succeed(
            "AUX_SECRETS_VAULT=/root/vault AUX_SECRETS_PASSWORD_FILE=/root/master-password "
            + "aux-secrets " + args
        )

    def make_vault(node):
        node.succeed("umask 077; printf %s 'correct horse battery staple' > /root/master-password")
        aux(node, "init /root/vault")
        aux(node, 'host add machine --ssh-host-key "$(cat /etc/ssh/ssh_host_ed25519_key.pub)"')

    def provision(node):
        return aux(node, "provision --host machine --manifest /etc/aux-secrets/manifest.json --local")

    def invocation(node, unit):
        return node.succeed(f"systemctl show -P InvocationID {unit}").strip()

    def stat(node, path):
        return node.succeed(f"stat -L -c '%U:%G %a' {path}").strip()
  '';
}
