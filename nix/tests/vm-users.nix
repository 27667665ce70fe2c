# neededForUsers: a password hash installed before systemd-sysusers (and userborn) create
# the users, used through hashedPasswordFile.
{ self }:
let
  common = import ./vm-common.nix { inherit self; };
  user =
    { pkgs, ... }:
    {
      imports = [ common.node ];
      environment.systemPackages = [ pkgs.mkpasswd ];
      aux.secrets."users/alice" = {
        store = "users/alice-hash";
        neededForUsers = true;
      };
      users.users.alice = {
        isNormalUser = true;
        hashedPasswordFile = "/run/aux-secrets-for-users/users/alice";
      };
    };
in
{
  name = "aux-secrets-users";

  nodes.sysusers = {
    imports = [ user ];
    systemd.sysusers.enable = true;
    users.mutableUsers = false;
    boot.initrd.systemd.enable = true;
    system.etc.overlay.enable = true;
  };

  nodes.userborn = {
    imports = [ user ];
    services.userborn.enable = true;
  };

  testScript = ''
    ${common.prelude}

    for node in (sysusers, userborn):
        node.wait_for_unit("multi-user.target")
        make_vault(node)
        node.succeed("umask 077; mkpasswd -m sha-512 -S aux-secrets-test 'alice password' > /root/hash")
        aux(node, "store add users/alice-hash --from-file /root/hash --strip-newline")
        provision(node)
        assert stat(node, "/run/aux-secrets-for-users/users/alice") == "root:root 400"

        # Users are made at boot: reboot so the hash is there before they are.
        node.shutdown()
        node.start()
        node.wait_for_unit("multi-user.target")
        node.succeed("systemctl is-active aux-secrets-install-for-users.service")
        hashed = node.succeed("cat /root/hash").strip()
        node.succeed(f"getent shadow alice | grep -qF '{hashed}'")
  '';
}
