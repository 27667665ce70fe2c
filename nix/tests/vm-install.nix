# Derived and stored secrets installed with owners and modes; restart on change and no
# restart without change; a template; a configuration switch (and back) keeps the values.
{ self }:
let
  common = import ./vm-common.nix { inherit self; };
in
{
  name = "aux-secrets-install";

  nodes.machine =
    { config, ... }:
    {
      imports = [ common.node ];
      aux.secrets = {
        "db/password" = {
          derive = {
            realm = "db/vm";
            length = 32;
            charset = "alnum";
          };
          owner = "app";
          group = "app";
          mode = "0440";
          restartUnits = [ "demo.service" ];
        };
        "api/token" = {
          store = "api/token";
          owner = "app";
          reloadUnits = [ "demo.service" ];
        };
      };
      aux.templates."demo/env" = {
        format = "env";
        owner = "app";
        content = ''
          DB_PASSWORD=${config.aux.placeholder."db/password"}
          API_TOKEN=${config.aux.placeholder."api/token"}
        '';
      };
      # A second configuration to switch to and back from.
      specialisation.other.configuration.aux.templates."demo/env".mode = "0440";
    };

  testScript = ''
    ${common.prelude}

    machine.wait_for_unit("multi-user.target")

    with subtest("before the first delivery: the command is there, the boot succeeds"):
        machine.succeed("test -x /run/current-system/sw/bin/aux-secrets")
        machine.succeed("systemctl is-active aux-secrets-install.service")
        machine.succeed("journalctl -b -u aux-secrets-install.service | grep -q 'no bundle has been delivered to host machine yet'")
        machine.succeed("findmnt -n -o FSTYPE /run/aux-secrets.d | grep -qx ramfs")

    machine.succeed("aux-secrets manifest check /etc/aux-secrets/manifest.json")
    make_vault(machine)
    machine.succeed("umask 077; printf %s tok-1 > /root/token")
    aux(machine, "store add api/token --from-file /root/token")

    with subtest("provision installs both secrets with owners and modes"):
        provision(machine)
        assert stat(machine, "/run/aux-secrets/db/password") == "app:app 440"
        assert stat(machine, "/run/aux-secrets/api/token") == "app:root 400"
        assert stat(machine, "/run/aux-secrets/templates/demo/env") == "app:root 400"
        expected = aux(machine, "derive db/vm --length 32 --charset alnum")
        assert machine.succeed("cat /run/aux-secrets/db/password") == expected
        assert machine.succeed("cat /run/aux-secrets/api/token") == "tok-1"
        machine.succeed("grep -qx 'API_TOKEN=tok-1' /run/aux-secrets/templates/demo/env")
        machine.succeed("findmnt -n -o FSTYPE /run/aux-secrets.d | grep -qx ramfs")
        machine.fail("grep -r tok-1 /nix/store/*aux-secrets-manifest.json")

    with subtest("no change, no restart"):
        before = invocation(machine, "demo.service")
        provision(machine)
        machine.succeed("systemctl restart aux-secrets-install.service")
        assert invocation(machine, "demo.service") == before

    with subtest("a changed token restarts (reloads) only its unit"):
        before = invocation(machine, "demo.service")
        machine.succeed("umask 077; printf %s tok-2 > /root/token")
        aux(machine, "store set api/token --from-file /root/token")
        provision(machine)
        assert machine.succeed("cat /run/aux-secrets/api/token") == "tok-2"
        # reloadUnits: reload-or-restart keeps the process (ExecReload exists)
        assert invocation(machine, "demo.service") == before
        machine.wait_until_succeeds("journalctl -u demo.service | grep -q Reload")

    with subtest("switching configurations does not roll back secret values"):
        machine.succeed("/run/current-system/specialisation/other/bin/switch-to-configuration test")
        assert stat(machine, "/run/aux-secrets/templates/demo/env") == "app:root 440"
        assert machine.succeed("cat /run/aux-secrets/api/token") == "tok-2"
        machine.succeed("/run/booted-system/bin/switch-to-configuration test")
        assert stat(machine, "/run/aux-secrets/templates/demo/env") == "app:root 400"
        assert machine.succeed("cat /run/aux-secrets/api/token") == "tok-2"

    with subtest("after a reboot the local store installs the same values without the operator"):
        machine.shutdown()
        machine.start()
        machine.wait_for_unit("aux-secrets-install.service")
        assert machine.succeed("cat /run/aux-secrets/api/token") == "tok-2"
        assert machine.succeed("cat /run/aux-secrets/db/password") == expected
  '';
}
