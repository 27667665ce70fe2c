# neededForUsers: a password hash installed before systemd-sysusers (and userborn) create
# the users, used through hashedPasswordFile. Before the first delivery both boot and make
# the users (sysusers locked, as it only ever sets a password when it creates the user).
{ self }:
let
  common = import ./vm-common.nix { inherit self; };
  hashFile = "/run/aux-secrets-for-users/users/alice";
  user =
    { pkgs, ... }:
    {
      imports = [ common.node ];
      environment.systemPackages = [ pkgs.mkpasswd ];
      aux.secrets."users/alice" = {
        store = "users/alice-hash";
        neededForUsers = true;
      };
    };
in
{
  name = "aux-secrets-users";

  # systemd-sysusers makes only system users.
  nodes.sysusers = {
    imports = [ user ];
    services.userborn.enable = false;
    systemd.sysusers.enable = true;
    users.mutableUsers = false;
    boot.initrd.systemd.enable = true;
    system.etc.overlay.enable = true;
    users.users.alice = {
      isSystemUser = true;
      group = "users";
      hashedPasswordFile = hashFile;
    };
  };

  nodes.userborn = {
    imports = [ user ];
    services.userborn.enable = true;
    users.users.alice = {
      isNormalUser = true;
      hashedPasswordFile = hashFile;
    };
  };

  testScript = ''
    ${common.prelude}

    for node in (sysusers, userborn):
        node.wait_for_unit("multi-user.target")
        with subtest(f"{node.name}: first boot, nothing delivered: the users are made"):
            node.succeed("systemctl is-active aux-secrets-install-for-users.service")
            node.succeed("journalctl -b -u aux-secrets-install-for-users.service | grep -q 'no bundle has been delivered'")
            node.succeed("getent passwd alice")
        make_vault(node)
        node.succeed("umask 077; mkpasswd -m sha-512 -S auxsecretstest 'alice password' > /root/hash")
        aux(node, "store add users/alice-hash --from-file /root/hash --strip-newline")
        provision(node)

        # The for-users tree is installed at boot, before the users are made.
        node.shutdown()
        node.start()
        node.wait_for_unit("multi-user.target")
        with subtest(f"{node.name}: the hash is installed before the users"):
            node.succeed("systemctl is-active aux-secrets-install-for-users.service")
            assert stat(node, "${hashFile}") == "root:root 400"

    with subtest("userborn sets the delivered hash"):
        hashed = userborn.succeed("cat /root/hash").strip()
        userborn.succeed(f"getent shadow alice | grep -qF '{hashed}'")

    with subtest("sysusers created alice locked and keeps her so"):
        sysusers.succeed("test \"$(getent shadow alice | cut -d: -f2)\" = '!'")
  '';
}
