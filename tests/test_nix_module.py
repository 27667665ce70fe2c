"""modules/aux-secrets.nix evaluated with a real nixpkgs lib (lib.evalModules).

nix/tests/module-eval.nix declares stubs for only the NixOS options the module writes
to. Needs AUX_SECRETS_NIXPKGS_LIB (a nixpkgs `lib` folder); skips with that message when
it is not set.
"""

# ruff: noqa: E501  (Nix snippets read best one per line)

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, REPO
from tests.nixeval import NixError, nix_eval, nix_string, nixpkgs_lib

EXAMPLES = sorted((FIXTURES / "nix").glob("*.nix"))
HARNESS = REPO / "nix" / "tests" / "module-eval.nix"
STORE = "/nix/store/00000000000000000000000000000000-"


def evaluate(module: str, tmp: Path, *attrs: str) -> dict[str, Any]:
    """Evaluate the host module text; return the harness attributes asked for."""
    lib = nixpkgs_lib()
    host = tmp / "host.nix"
    host.write_text(module)
    names = " ".join(attrs)
    expr = (
        f"let r = import {nix_string(HARNESS)} {{ lib = import {nix_string(lib)}; "
        f"configuration = {nix_string(host)}; }}; in {{ inherit (r) {names}; }}"
    )
    result = nix_eval(expr.replace(nix_string(host), str(host)), tmp)
    assert isinstance(result, dict)
    return result


EXAMPLE_HOST = REPO / "nix" / "tests" / "example-host.nix"
INSTALL = f"{STORE}aux-secrets/bin/aux-secrets install --manifest {STORE}aux-secrets-manifest.json"
MOUNT = f"{STORE}aux-secrets-mount"


def from_example(example: Path, extra: str = "systemd.sysusers.enable = true;") -> str:
    """The example as a host (nix/tests/example-host.nix declares its users and groups)."""
    return f"import {EXAMPLE_HOST} (import {example}) {{ {extra} }}\n"


def normalised(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_module_writes_the_golden_manifest(example: Path, tmp_path: Path) -> None:
    r = evaluate(
        from_example(example), tmp_path, "manifest", "failedAssertions", "etc", "manifestCheck"
    )
    assert r["failedAssertions"] == []
    golden = (FIXTURES / "manifests" / f"{example.stem}.json").read_bytes()
    # The module always runs systemctl with --no-block; the goldens keep the default.
    assert r["manifest"]["settings"]["systemctl"] == ["systemctl", "--no-block"]
    r["manifest"]["settings"]["systemctl"] = json.loads(golden)["settings"]["systemctl"]
    assert normalised(r["manifest"]) == golden
    assert r["etc"]["aux-secrets/manifest.json"]["source"] == STORE + "aux-secrets-manifest.json"
    assert (
        r["manifestCheck"].strip() == f'{STORE}aux-secrets/bin/aux-secrets manifest check "$target"'
    )


def test_install_unit(tmp_path: Path) -> None:
    r = evaluate(
        from_example(FIXTURES / "nix" / "talos-hmac.nix"),
        tmp_path,
        "services",
        "fileSystems",
        "activationScripts",
        "systemPackages",
    )
    unit = r["services"]["aux-secrets-install"]
    assert unit["wantedBy"] == ["sysinit.target"]
    assert unit["before"] == ["sysinit.target", "sysinit-reactivation.target", "shutdown.target"]
    assert unit["conflicts"] == ["shutdown.target"]
    assert unit["requiredBy"] == ["sysinit-reactivation.target"]
    assert unit["after"] == [
        "local-fs.target",
        "systemd-tmpfiles-setup.service",
        "systemd-sysusers.service",
        "userborn.service",
    ]
    assert unit["wants"] == []  # no tpm2.target without tpm2.enable
    assert unit["unitConfig"]["DefaultDependencies"] is False
    assert unit["unitConfig"]["RequiresMountsFor"] == ["/var/lib/aux-secrets"]
    service = unit["serviceConfig"]
    assert (service["Type"], service["RemainAfterExit"]) == ("oneshot", True)
    assert service["SuccessExitStatus"] == [75]  # no bundle delivered yet: not a failure
    assert service["ExecStart"] == INSTALL
    assert service["ExecStartPre"] == f"{MOUNT} /run/aux-secrets.d"
    assert unit["restartTriggers"] == [
        f"{STORE}aux-secrets-manifest.json",
        "ramfs:mode=0751,nosuid,nodev,noexec",
    ]
    assert "aux-secrets-install-for-users" not in r["services"]
    # The unit mounts its RAM filesystem itself: no fstab entry (see test_nix_units.py).
    assert r["fileSystems"] == {}
    assert sorted(r["activationScripts"]) == ["auxSecretsDryActivate", "auxSecretsNotice"]
    # provision, activate and status run the CLI on the host
    assert r["systemPackages"] == ["aux-secrets"]


def test_mount_script(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "talos-hmac.nix"), tmp_path, "mountScript")
    script = r["mountScript"]
    assert "mount -t ramfs -o mode=0751,nosuid,nodev,noexec none" in script
    assert "umount --lazy" in script  # a filesystem of the other type is replaced
    assert 'if [ "$have" = ramfs ]' in script


def test_toggling_tmpfs_restarts_the_install(tmp_path: Path) -> None:
    """useTmpfs changes the filesystem: the install unit's triggers change with it, so a
    switch re-runs the install (which replaces the filesystem and writes a generation)."""
    base = from_example(FIXTURES / "nix" / "users.nix")
    tmpfs = from_example(
        FIXTURES / "nix" / "users.nix",
        "systemd.sysusers.enable = true; aux.settings.useTmpfs = true;",
    )
    ramfs_units = evaluate(base, tmp_path, "services")["services"]
    tmpfs_units = evaluate(tmpfs, tmp_path, "services", "mountScript")
    for name in ("aux-secrets-install", "aux-secrets-install-for-users"):
        before = ramfs_units[name]["restartTriggers"]
        after = tmpfs_units["services"][name]["restartTriggers"]
        assert before != after, name
        assert after[1] == "tmpfs:mode=0751,nosuid,nodev,noexec,noswap"
    assert "mount -t tmpfs -o mode=0751,nosuid,nodev,noexec,noswap" in tmpfs_units["mountScript"]


def test_tpm2_orders_the_install_after_the_tpm(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "credentials.nix"), tmp_path, "services")
    unit = r["services"]["aux-secrets-install"]
    assert unit["wants"] == ["tpm2.target"]
    assert unit["after"][-1] == "tpm2.target"


def test_tpm2_with_activation_scripts_installs_at_boot_from_the_unit(tmp_path: Path) -> None:
    """The boot's activation script runs before udev, so before the TPM: the unit installs
    at boot (after tpm2.target), the activation script at a switch only."""
    r = evaluate(
        from_example(FIXTURES / "nix" / "credentials.nix", extra=""),
        tmp_path,
        "services",
        "activationScripts",
    )
    unit = r["services"]["aux-secrets-install"]
    assert unit["wantedBy"] == ["sysinit.target"]
    assert unit["requiredBy"] == []  # not re-run by a switch: the script does that
    assert unit["restartIfChanged"] is False
    assert unit["after"][-1] == "tpm2.target" and unit["wants"] == ["tpm2.target"]
    text = r["activationScripts"]["auxSecrets"]["text"]
    assert "if [ -e /run/current-system ]; then" in text
    assert f"{INSTALL} --activation-lists" in text


def test_rotation_timer(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "talos-hmac.nix"), tmp_path, "services", "timers")
    timer = r["timers"]["aux-secrets-rotate"]
    assert timer["wantedBy"] == ["timers.target"]
    assert timer["timerConfig"]["OnCalendar"] == ["*-*-01 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC"]
    assert timer["timerConfig"]["Persistent"] is True
    rotate = r["services"]["aux-secrets-rotate"]["serviceConfig"]
    assert rotate["Type"] == "oneshot"
    assert "RemainAfterExit" not in rotate
    assert rotate["ExecStart"] == INSTALL
    assert rotate["SuccessExitStatus"] == [75]


def test_no_timer_without_rotation(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "web-db.nix"), tmp_path, "timers", "services")
    assert r["timers"] == {}
    assert "aux-secrets-rotate" not in r["services"]


def test_secrets_for_users_unit(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "users.nix"), tmp_path, "services", "fileSystems")
    unit = r["services"]["aux-secrets-install-for-users"]
    assert unit["before"] == [
        "systemd-sysusers.service",
        "userborn.service",
        "sysinit.target",
        "sysinit-reactivation.target",
        "shutdown.target",
    ]
    assert unit["wantedBy"] == ["sysinit.target", "systemd-sysusers.service", "userborn.service"]
    assert unit["unitConfig"] == {"DefaultDependencies": False}  # no RequiresMountsFor: no cycle
    assert unit["serviceConfig"]["ExecStart"] == INSTALL + " --for-users"
    assert unit["serviceConfig"]["ExecStartPre"] == f"{MOUNT} /run/aux-secrets-for-users.d"
    assert unit["serviceConfig"]["SuccessExitStatus"] == [75]
    assert r["fileSystems"] == {}
    assert "aux-secrets-install" in r["services"]  # the ssh key is a regular secret


def test_credentials_reach_their_units(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "credentials.nix"), tmp_path, "services")
    restic = r["services"]["restic-backups-b2"]
    assert restic["serviceConfig"]["LoadCredentialEncrypted"] == [
        "restic-password:/var/lib/aux-secrets/credentials/restic-password.cred"
    ]
    # Before the first delivery the sealed file is missing: a default, not a failure
    # (one newline, written as \n: empty once stripped; an empty value fails on systemd 252)
    assert restic["serviceConfig"]["SetCredential"] == ["restic-password:\\n"]
    assert restic["unitConfig"]["RequiresMountsFor"] == ["/var/lib/aux-secrets"]
    networkd = r["services"]["systemd-networkd"]["serviceConfig"]["LoadCredentialEncrypted"]
    assert networkd == ["wireguard-wg0:/var/lib/aux-secrets/credentials/wireguard-wg0.cred"]


def test_placeholders_and_tmpfs(tmp_path: Path) -> None:
    module = """{ config, ... }: {
  aux.secrets."talos/hmac".derive = { realm = "talos/hmac/{period}"; rotation.period = "monthly"; };
  aux.templates.env.content = "A=${config.aux.placeholder."talos/hmac"}\\nB=${config.aux.placeholder."talos/hmac".retired}\\n";
  aux.settings.useTmpfs = true;
  aux.settings.systemctl = [ "systemctl" ];
  systemd.sysusers.enable = true;
}
"""
    r = evaluate(module, tmp_path, "placeholder", "manifest", "mountScript", "failedAssertions")
    assert r["failedAssertions"] == []
    assert r["placeholder"]["talos/hmac"] == {
        "string": "{{aux:talos/hmac}}",
        "current": "{{aux:talos/hmac:current}}",
        "retired": "{{aux:talos/hmac:retired}}",
        "public": "{{aux:talos/hmac:public}}",
    }
    assert (
        r["manifest"]["templates"]["env"]["content"]
        == "A={{aux:talos/hmac}}\nB={{aux:talos/hmac:retired}}\n"
    )
    assert r["manifest"]["host"] == "nixos"
    # --no-block is added back: a blocking restart would wait on the switch running it
    assert r["manifest"]["settings"]["systemctl"] == ["systemctl", "--no-block"]
    assert "mount -t tmpfs -o mode=0751,nosuid,nodev,noexec,noswap" in r["mountScript"]


def test_host_keys_follow_openssh(tmp_path: Path) -> None:
    off = evaluate('{ aux.secrets.a.store = "x"; }', tmp_path, "manifest")["manifest"]
    assert off["settings"]["hostKeys"] == []
    on = '{ aux.secrets.a.store = "x"; services.openssh.enable = true; }'
    keys = evaluate(on, tmp_path, "manifest")["manifest"]["settings"]["hostKeys"]
    assert keys == ["/etc/ssh/ssh_host_ed25519_key"]
    age = '{ aux.secrets.a.store = "x"; aux.settings.backend = "age"; }'
    failed = evaluate(age, tmp_path, "failedAssertions")["failedAssertions"]
    assert any("enable services.openssh or list the keys" in m for m in failed)


def test_group_defaults_to_the_owners_primary_group(tmp_path: Path) -> None:
    module = """{
  aux.secrets.a = { store = "a"; owner = "app"; };
  aux.secrets.b = { store = "b"; owner = "1234"; };
  aux.templates.t = { content = "x"; owner = "app"; };
  aux.secrets.c.store = "c";
  users.users.app = { isSystemUser = true; group = "appgroup"; };
  users.groups.appgroup = { };
}
"""
    r = evaluate(module, tmp_path, "manifest", "failedAssertions")
    assert r["failedAssertions"] == []
    groups = {n: s["group"] for n, s in r["manifest"]["secrets"].items()}
    assert groups == {"a": "appgroup", "b": "root", "c": "root"}
    assert r["manifest"]["templates"]["t"]["group"] == "appgroup"


def test_nothing_configured_writes_nothing(tmp_path: Path) -> None:
    r = evaluate("{ }", tmp_path, "services", "etc", "fileSystems", "manifest")
    assert r == {"services": {}, "etc": {}, "fileSystems": {}, "manifest": None}


MODULE_ASSERTIONS = [
    ("no source", 'aux.secrets.a = { };', "aux.secrets.a: set exactly one of aux.secrets.a.derive or aux.secrets.a.store (neither is set)"),
    ("two sources", 'aux.secrets.a = { store = "x"; derive.realm = "r"; };', "(both are set)"),
    ("bad mode", 'aux.secrets."db/pw" = { store = "x"; mode = "600"; };', 'aux.secrets."db/pw".mode = "600" is not four octal digits'),
    ("duplicate paths", 'aux.secrets = { a.store = "x"; b = { store = "y"; path = "/run/aux-secrets/a"; }; };', "aux.secrets.a.path and aux.secrets.b.path all write /run/aux-secrets/a"),
    ("unknown placeholder", 'aux.secrets.a.store = "x"; aux.templates.t.content = "{{aux:b}}";', "aux.templates.t.content uses {{aux:b:current}}, but aux.secrets.b is not defined"),
    ("users non-root", 'aux.secrets.pw = { store = "x"; neededForUsers = true; group = "wheel"; };', 'aux.secrets.pw.owner and .group must be "root" when aux.secrets.pw.neededForUsers is set'),
    ("age without keys", 'aux.secrets.a.store = "x"; aux.settings = { backend = "age"; hostKeys = [ ]; };', "aux.settings.hostKeys must not be empty"),
    ("undeclared owner", 'aux.secrets."github/token" = { store = "x"; owner = "deployer"; };', 'aux.secrets."github/token".owner = "deployer" is not declared in users.users'),
    ("undeclared group", 'aux.templates.t = { content = "x"; group = "deployers"; };', 'aux.templates.t.group = "deployers" is not declared in users.groups'),
    ("undeclared settings group", 'aux.secrets.a.store = "x"; aux.settings.group = "secrets";', 'aux.settings.group = "secrets" is not declared'),
    ("nixos-init with scripts", 'aux.secrets.a.store = "x"; system.nixos-init.enable = true;', "aux.settings.useSystemdActivation must be true with system.nixos-init.enable"),
    ("store on a late mount", 'aux.secrets.pw = { store = "x"; neededForUsers = true; }; services.userborn.enable = true; fileSystems."/var".device = "/dev/vdb";', 'aux.settings.storeDir (/var/lib/aux-secrets) is on the file system /var, mounted after the users are made'),
    ("tpm2 before users", 'aux.secrets.pw = { store = "x"; neededForUsers = true; }; services.userborn.enable = true; aux.settings.tpm2.enable = true;', "aux.settings.tpm2.enable cannot be used with neededForUsers secrets"),
    ("tpm2 before users, scripts", 'aux.secrets.pw = { store = "x"; neededForUsers = true; }; aux.settings.tpm2.enable = true;', "aux.settings.tpm2.enable cannot be used with neededForUsers secrets"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"), [a[1:] for a in MODULE_ASSERTIONS], ids=[a[0] for a in MODULE_ASSERTIONS]
)
def test_module_assertion_fires(body: str, message: str, tmp_path: Path) -> None:
    r = evaluate("{ " + body + " }", tmp_path, "failedAssertions")
    assert len(r["failedAssertions"]) == 1, r["failedAssertions"]
    assert message in r["failedAssertions"][0]


def test_accounts_that_pass(tmp_path: Path) -> None:
    module = """{
  aux.secrets.a = { store = "x"; owner = "1001"; group = "1002"; };
  aux.secrets.b = { store = "y"; owner = "app"; group = "wheel"; };
  aux.secrets.pw = { store = "z"; neededForUsers = true; };
  users.users.app = { isSystemUser = true; group = "app"; };
  users.groups.app = { };
  services.userborn.enable = true;
  fileSystems."/var" = { device = "/dev/vdb"; neededForBoot = true; };
  fileSystems."/srv".device = "/dev/vdc";
}
"""
    assert evaluate(module, tmp_path, "failedAssertions")["failedAssertions"] == []


SYSUSERS_HOST = """{
  aux.secrets."users/alice" = { store = "alice-hash"; neededForUsers = true; };
  users.users.alice = { isNormalUser = true; hashedPasswordFile = "/run/aux-secrets-for-users/users/alice"; };
  users.users.svc = { isSystemUser = true; group = "nogroup"; hashedPasswordFile = "/run/aux-secrets-for-users/users/alice"; };
  systemd.sysusers.enable = true;
}
"""


def test_sysusers_refuses_a_normal_user_with_a_secret_hash(tmp_path: Path) -> None:
    failed = evaluate(SYSUSERS_HOST, tmp_path, "failedAssertions")["failedAssertions"]
    ours = [m for m in failed if m.startswith("users.users.alice.hashedPasswordFile")]
    assert ours == [
        "users.users.alice.hashedPasswordFile is an aux-secrets neededForUsers secret, but alice "
        "is a normal user: systemd-sysusers creates only system users (use services.userborn, "
        "or isSystemUser)"
    ]


def test_sysusers_creates_the_account_locked_before_the_first_delivery(tmp_path: Path) -> None:
    """sysusers loads hashedPasswordFile with LoadCredential=, which fails the whole unit
    while the file is missing; SetCredential= is its default (systemd.exec(5))."""
    r = evaluate(
        SYSUSERS_HOST.replace("isNormalUser = true", 'isSystemUser = true; group = "users"'),
        tmp_path,
        "services",
        "failedAssertions",
    )
    assert r["failedAssertions"] == []
    sysusers = r["services"]["systemd-sysusers"]["serviceConfig"]
    assert sysusers["SetCredential"] == [
        "passwd.hashed-password.alice:!",
        "passwd.hashed-password.svc:!",
    ]
    userborn = SYSUSERS_HOST.replace("systemd.sysusers.enable", "services.userborn.enable")
    assert "systemd-sysusers" not in evaluate(userborn, tmp_path, "services")["services"]


def test_validation_runs_on_the_build_platform(tmp_path: Path) -> None:
    """A cross build checks the manifest with the build platform's package."""
    lib = nixpkgs_lib()
    host = tmp_path / "cross.nix"
    host.write_text('{ aux.secrets.a.store = "x"; systemd.sysusers.enable = true; }\n')
    stub = (
        'let fake = n: { type = "derivation"; name = n; outPath = "/nix/store/x-" + n; meta.mainProgram = "aux-secrets"; }; in '
        '{ stdenv.hostPlatform.system = "aarch64-linux"; stdenv.buildPlatform.system = "x86_64-linux"; '
        "writeTextFile = a: fake a.name // { inherit (a) text checkPhase; }; writeShellScript = n: t: fake n; "
        'callPackage = _: _: fake "aux-secrets-aarch64"; buildPackages.callPackage = _: _: fake "aux-secrets-x86_64"; '
        'coreutils = fake "coreutils"; util-linux = fake "util-linux"; }'
    )
    expr = (
        f"let r = import {nix_string(HARNESS)} {{ lib = import {nix_string(lib)}; "
        f"configuration = {host}; pkgs = {stub}; }}; in {{ inherit (r) manifestCheck services systemPackages; }}"
    )
    r = nix_eval(expr, tmp_path)
    assert (
        r["manifestCheck"].strip()
        == '/nix/store/x-aux-secrets-x86_64/bin/aux-secrets manifest check "$target"'
    )
    assert r["services"]["aux-secrets-install"]["serviceConfig"]["ExecStart"].startswith(
        "/nix/store/x-aux-secrets-aarch64/bin/"
    )
    assert r["systemPackages"] == ["aux-secrets-aarch64"]


def test_option_types_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(NixError, match=r"aux\.secrets\.a\.derive\.type"):
        evaluate('{ aux.secrets.a.derive = { realm = "r"; type = "dsa"; }; }', tmp_path, "manifest")
    with pytest.raises(NixError, match=r"aux\.secrets\.a\.value"):
        evaluate('{ aux.secrets.a = { store = "x"; value = "hunter2"; }; }', tmp_path, "manifest")


def _flake(lib: Path) -> str:
    stub_pkgs = (
        '{ stdenv.hostPlatform.system = "x86_64-linux"; '
        'callPackage = f: a: { type = "derivation"; name = "aux-secrets"; '
        'outPath = "/nix/store/11111111111111111111111111111111-aux-secrets"; '
        'meta.mainProgram = "aux-secrets"; }; '
        # only the current name: the deprecated alias nixfmt-rfc-style is not there
        'nixfmt = { type = "derivation"; name = "nixfmt"; outPath = "/nix/store/nixfmt"; }; }'
    )
    return (
        f"let lib = import {lib}; flake = import {REPO / 'flake.nix'}; "
        f"nixpkgs = {{ inherit lib; outPath = {lib.parent}; "
        f'legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: {stub_pkgs}); }}; '
        "self = flake.outputs { inherit self nixpkgs; }; in self"
    )


def test_flake_outputs(tmp_path: Path) -> None:
    lib = nixpkgs_lib()
    expr = (
        f"let self = {_flake(lib)}; in {{ top = builtins.attrNames self; "
        "systems = builtins.attrNames self.packages; "
        'packages = builtins.attrNames self.packages."x86_64-linux"; '
        'checks = builtins.attrNames self.checks."aarch64-linux"; '
        'app = self.apps."x86_64-linux".default.program; '
        "modules = builtins.attrNames self.nixosModules; }"
    )
    r = nix_eval(expr, tmp_path)
    assert r["top"] == [
        "apps",
        "checks",
        "devShells",
        "formatter",
        "nixosModules",
        "overlays",
        "packages",
    ]
    assert r["systems"] == ["aarch64-linux", "x86_64-linux"]
    assert r["packages"] == ["aux-secrets", "default"]
    assert r["checks"] == [
        "module-eval",
        "python",
        "vm-install",
        "vm-rotation",
        "vm-tpm2",
        "vm-users",
    ]
    assert r["app"] == "/nix/store/11111111111111111111111111111111-aux-secrets/bin/aux-secrets"
    assert r["modules"] == ["aux-secrets", "default"]


def test_flake_module_uses_the_systems_pkgs(tmp_path: Path) -> None:
    """The flake's module takes the package from the system's pkgs (not the flake's own
    nixpkgs), and importing both of its names is not a conflict."""
    lib = nixpkgs_lib()
    module = f"""let self = {_flake(lib)}; in {{
  imports = [ self.nixosModules.default self.nixosModules.aux-secrets ];
  aux.secrets.a.store = "a";
  systemd.sysusers.enable = true;
}}
"""
    r = evaluate(module, tmp_path, "services", "failedAssertions")
    assert r["failedAssertions"] == []
    assert r["services"]["aux-secrets-install"]["serviceConfig"]["ExecStart"] == INSTALL


def test_flake_formatter_is_not_an_alias(tmp_path: Path) -> None:
    lib = nixpkgs_lib()
    expr = f'let self = {_flake(lib)}; in self.formatter."x86_64-linux".name'
    assert nix_eval(expr, tmp_path) == "nixfmt"


def test_flake_module_eval_check_evaluates(tmp_path: Path) -> None:
    """checks.<system>.module-eval: every example through the module gives its golden."""
    lib = nixpkgs_lib()
    checks = REPO / "nix" / "tests" / "eval-checks.nix"
    expr = (
        f"import {checks} {{ pkgs = {{ lib = import {lib}; "
        "runCommand = name: attrs: script: attrs.checked; }; }"
    )
    names = sorted(p.stem for p in (FIXTURES / "nix").glob("*.nix"))
    assert nix_eval(expr, tmp_path) == names


def python_requirements() -> set[str]:
    """pyproject's runtime dependencies and `strength` extra, as nixpkgs names them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["strength"]
    return {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower() for spec in wanted}


def test_package_evaluates_with_the_pyrage_fallback(tmp_path: Path) -> None:
    lib = nixpkgs_lib()
    expr = f"""let
  lib = import {lib};
  stdenv = {{ hostPlatform.system = "x86_64-linux"; cc.cc.lib = "libgcc"; }};
  py = {{
    buildPythonApplication = a: a;
    callPackage = f: a: import f ({{
      inherit lib stdenv;
      buildPythonPackage = a: a;
      fetchPypi = a: a;
      autoPatchelfHook = "autopatchelf";
    }} // a);
  }} // lib.genAttrs [ "setuptools" "wheel" "argon2-cffi" "cryptography" "gmpy2" "pynacl" "rich" "tomli-w" "typer" "zxcvbn" "pytestCheckHook" "hypothesis" "pytest-timeout" ] (n: n);
  p = import {REPO / "nix" / "package.nix"} {{ inherit lib; python3Packages = py; systemd = "systemd"; openssh = "openssh"; }};
in {{
  inherit (p) pname version pythonImportsCheck enabledTestPaths;
  checkInputs = p.nativeCheckInputs;
  inherit (p.meta) platforms license;
  doCheck = p.doCheck or true;
  deps = map (d: d.pname or d) p.dependencies;
  wheel = {{ inherit (p.passthru.pyrage.src) pname version platform hash abi; }};
}}"""
    r = nix_eval(expr, tmp_path)
    assert r["pname"] == "aux-secrets"
    assert (
        r["version"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    )
    assert r["deps"][0] == "pyrage"
    # Every runtime dependency of pyproject.toml and its `strength` extra, by nixpkgs name.
    assert set(r["deps"][1:]) == python_requirements() - {"pyrage"}
    assert r["wheel"]["platform"] == "manylinux_2_17_x86_64.manylinux2014_x86_64"
    # Only where the pyrage wheels are; the tests that need no other program run.
    assert sorted(r["platforms"]) == ["aarch64-linux", "x86_64-linux"]
    assert r["doCheck"] is True
    assert r["checkInputs"] == ["pytestCheckHook", "hypothesis", "pytest-timeout"]
    assert r["enabledTestPaths"] and all((REPO / t).is_file() for t in r["enabledTestPaths"])
    assert r["wheel"]["hash"].startswith("sha256-")
