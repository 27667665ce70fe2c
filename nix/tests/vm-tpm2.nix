# TPM2 sealing: the local store is sealed with host key + TPM2 and opens again after a
# reboot; a changed PCR 7 makes unsealing fail with one clear line, nothing installed.
{ self }:
let
  common = import ./vm-common.nix { inherit self; };
in
{
  name = "aux-secrets-tpm2";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ common.node ];
      virtualisation.tpm.enable = true;
      environment.systemPackages = [ pkgs.tpm2-tools ];
      aux.settings.tpm2 = {
        enable = true;
        pcrs = "7";
      };
      aux.secrets.token = {
        derive = {
          realm = "token/vm";
          charset = "alnum";
          length = 32;
        };
        credential.units = [ "demo.service" ];
      };
    };

  testScript = ''
    ${common.prelude}

    machine.wait_for_unit("multi-user.target")
    make_vault(machine)
    provision(machine)
    machine.succeed("aux-secrets status")
    machine.succeed("test -s /var/lib/aux-secrets/credentials/token.cred")
    expected = aux(machine, "derive token/vm --charset alnum --length 32")
    machine.fail(f"grep -rqF '{expected}' /var/lib/aux-secrets")
    assert machine.succeed("cat /run/aux-secrets/token") == expected

    with subtest("the credential reaches the service through LoadCredentialEncrypted"):
        machine.succeed("systemctl restart demo.service")
        assert machine.succeed("cat /run/credentials/demo.service/token") == expected

    with subtest("reboot: the TPM unseals the store"):
        machine.shutdown()
        machine.start()
        machine.wait_for_unit("aux-secrets-install.service")
        assert machine.succeed("cat /run/aux-secrets/token") == expected

    with subtest("a changed PCR 7 refuses to unseal"):
        machine.succeed("tpm2_pcrextend 7:sha256=" + "00" * 32)
        machine.fail("aux-secrets install --manifest /etc/aux-secrets/manifest.json")
        out = machine.fail("aux-secrets install --manifest /etc/aux-secrets/manifest.json 2>&1")
        assert out.count("aux-secrets: error:") == 1, out
        assert machine.succeed("cat /run/aux-secrets/token") == expected
  '';
}
