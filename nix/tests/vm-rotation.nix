# A rotation boundary crossed by moving the clock: the timer installs the new current
# value (carried ahead in the bundle) with no operator, and restarts the unit.
{ self }:
let
  common = import ./vm-common.nix { inherit self; };
in
{
  name = "aux-secrets-rotation";

  nodes.machine =
    { config, ... }:
    {
      imports = [ common.node ];
      services.timesyncd.enable = false;
      aux.secrets."talos/hmac" = {
        derive = {
          realm = "talos/hmac/{period}";
          length = 64;
          charset = "urlsafe";
          rotation = {
            period = "monthly";
            retired = 1;
            ahead = 1;
          };
        };
        restartUnits = [ "demo.service" ];
      };
      aux.templates."talos/env" = {
        format = "env";
        content = ''
          TALOS_SECRETS_HMAC_CURRENT=${config.aux.placeholder."talos/hmac"}
          TALOS_SECRETS_HMAC_RETIRED=${config.aux.placeholder."talos/hmac".retired}
        '';
        restartUnits = [ "demo.service" ];
      };
    };

  testScript = ''
    ${common.prelude}

    machine.wait_for_unit("multi-user.target")
    machine.succeed("date -u -s '2027-01-31 23:58:30'")
    make_vault(machine)
    provision(machine)
    january = aux(machine, "derive talos/hmac/2027-01 --length 64 --charset urlsafe")
    february = aux(machine, "derive talos/hmac/2027-02 --length 64 --charset urlsafe")
    assert machine.succeed("cat /run/aux-secrets/talos/hmac") == january
    machine.succeed("systemctl list-timers aux-secrets-rotate.timer | grep -q aux-secrets-rotate")
    before = invocation(machine, "demo.service")

    # The boundary passes; the timer runs the installer; the bundle already holds February.
    machine.wait_until_succeeds(f"test \"$(cat /run/aux-secrets/talos/hmac)\" = '{february}'", timeout=120)
    machine.succeed(f"grep -qx 'TALOS_SECRETS_HMAC_CURRENT={february}' /run/aux-secrets/templates/talos/env")
    machine.succeed(f"grep -q '{january}' /run/aux-secrets/templates/talos/env")
    machine.wait_until_succeeds(f"test \"$(systemctl show -P InvocationID demo.service)\" != '{before}'")
  '';
}
