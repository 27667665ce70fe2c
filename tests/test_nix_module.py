"""modules/aux-secrets.nix evaluated with a real nixpkgs lib (lib.evalModules).

nix/tests/module-eval.nix declares stubs for only the NixOS options the module writes
to. Needs AUX_SECRETS_NIXPKGS_LIB (a nixpkgs `lib` folder); skips with that message when
it is not set.
"""

# ruff: noqa: E501  (Nix snippets read best one per line)

from __future__ import annotations

import json
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


def from_example(example: Path, extra: str = "systemd.sysusers.enable = true;") -> str:
    return f"""{{ lib, ... }}:
let f = import {example}; in {{
  networking.hostName = f.host;
  aux.secrets = f.secrets or {{ }};
  aux.templates = f.templates or {{ }};
  aux.settings = (f.settings or {{ }}) // {{ systemctl = [ "systemctl" ]; }};
  {extra}
}}
"""


def normalised(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_module_writes_the_golden_manifest(example: Path, tmp_path: Path) -> None:
    r = evaluate(
        from_example(example), tmp_path, "manifest", "failedAssertions", "etc", "manifestCheck"
    )
    assert r["failedAssertions"] == []
    golden = (FIXTURES / "manifests" / f"{example.stem}.json").read_bytes()
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
    )
    unit = r["services"]["aux-secrets-install"]
    assert unit["wantedBy"] == ["sysinit.target"]
    assert unit["before"] == ["sysinit.target", "sysinit-reactivation.target"]
    assert unit["requiredBy"] == ["sysinit-reactivation.target"]
    assert unit["after"] == ["local-fs.target", "systemd-sysusers.service", "userborn.service"]
    assert unit["unitConfig"]["DefaultDependencies"] == "no"
    assert "/var/lib/aux-secrets" in unit["unitConfig"]["RequiresMountsFor"]
    assert "/run/aux-secrets.d" in unit["unitConfig"]["RequiresMountsFor"]
    service = unit["serviceConfig"]
    assert (service["Type"], service["RemainAfterExit"]) == ("oneshot", True)
    assert (
        service["ExecStart"]
        == f"{STORE}aux-secrets/bin/aux-secrets install --manifest {STORE}aux-secrets-manifest.json"
    )
    assert unit["restartTriggers"] == [f"{STORE}aux-secrets-manifest.json"]
    assert "aux-secrets-install-for-users" not in r["services"]
    assert r["fileSystems"]["/run/aux-secrets.d"] == {
        "device": "none",
        "fsType": "ramfs",
        "options": ["mode=0751", "nosuid", "nodev", "noexec"],
    }
    assert r["activationScripts"] == {}


def test_rotation_timer(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "talos-hmac.nix"), tmp_path, "services", "timers")
    timer = r["timers"]["aux-secrets-rotate"]
    assert timer["wantedBy"] == ["timers.target"]
    assert timer["timerConfig"]["OnCalendar"] == ["*-*-01 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC"]
    assert timer["timerConfig"]["Persistent"] is True
    rotate = r["services"]["aux-secrets-rotate"]["serviceConfig"]
    assert rotate["Type"] == "oneshot"
    assert "RemainAfterExit" not in rotate
    assert " install --manifest " in rotate["ExecStart"]


def test_no_timer_without_rotation(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "web-db.nix"), tmp_path, "timers", "services")
    assert r["timers"] == {}
    assert "aux-secrets-rotate" not in r["services"]


def test_secrets_for_users_unit(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "users.nix"), tmp_path, "services", "fileSystems")
    unit = r["services"]["aux-secrets-install-for-users"]
    assert unit["before"] == ["systemd-sysusers.service", "userborn.service"]
    assert unit["wantedBy"] == ["systemd-sysusers.service", "userborn.service"]
    assert unit["unitConfig"]["DefaultDependencies"] == "no"
    assert unit["serviceConfig"]["ExecStart"].endswith(" --for-users")
    assert "/run/aux-secrets-for-users.d" in r["fileSystems"]
    assert "aux-secrets-install" in r["services"]  # the ssh key is a regular secret


def test_activation_script_fallback(tmp_path: Path) -> None:
    module = from_example(FIXTURES / "nix" / "users.nix", extra="")
    r = evaluate(module, tmp_path, "services", "activationScripts", "fileSystems")
    assert "aux-secrets-install" not in r["services"]
    assert "aux-secrets-install-for-users" not in r["services"]
    scripts = r["activationScripts"]
    assert scripts["auxSecrets"]["deps"] == ["specialfs", "users", "groups"]
    assert "install --manifest" in scripts["auxSecrets"]["text"]
    assert "--activation-lists" in scripts["auxSecrets"]["text"]
    assert (
        "mount -t ramfs -o mode=0751,nosuid,nodev,noexec none /run/aux-secrets.d"
        in scripts["auxSecrets"]["text"]
    )
    assert "--for-users" in scripts["auxSecretsForUsers"]["text"]
    assert scripts["users"]["deps"] == ["auxSecretsForUsers"]
    assert r["fileSystems"] == {}


def test_credentials_reach_their_units(tmp_path: Path) -> None:
    r = evaluate(from_example(FIXTURES / "nix" / "credentials.nix"), tmp_path, "services")
    restic = r["services"]["restic-backups-b2"]
    assert restic["serviceConfig"]["LoadCredentialEncrypted"] == [
        "restic-password:/var/lib/aux-secrets/credentials/restic-password.cred"
    ]
    assert restic["unitConfig"]["RequiresMountsFor"] == ["/var/lib/aux-secrets"]
    networkd = r["services"]["systemd-networkd"]["serviceConfig"]["LoadCredentialEncrypted"]
    assert networkd == ["wireguard-wg0:/var/lib/aux-secrets/credentials/wireguard-wg0.cred"]


def test_placeholders_and_tmpfs(tmp_path: Path) -> None:
    module = """{ config, ... }: {
  aux.secrets."talos/hmac".derive = { realm = "talos/hmac/{period}"; rotation.period = "monthly"; };
  aux.templates.env.content = "A=${config.aux.placeholder."talos/hmac"}\\nB=${config.aux.placeholder."talos/hmac".retired}\\n";
  aux.settings.useTmpfs = true;
  systemd.sysusers.enable = true;
}
"""
    r = evaluate(module, tmp_path, "placeholder", "manifest", "fileSystems", "failedAssertions")
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
    assert r["manifest"]["settings"]["systemctl"] == ["systemctl", "--no-block"]
    fs = r["fileSystems"]["/run/aux-secrets.d"]
    assert (fs["fsType"], fs["options"][-1]) == ("tmpfs", "noswap")


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
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"), [a[1:] for a in MODULE_ASSERTIONS], ids=[a[0] for a in MODULE_ASSERTIONS]
)
def test_module_assertion_fires(body: str, message: str, tmp_path: Path) -> None:
    r = evaluate("{ " + body + " }", tmp_path, "failedAssertions")
    assert len(r["failedAssertions"]) == 1, r["failedAssertions"]
    assert message in r["failedAssertions"][0]


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
        'meta.mainProgram = "aux-secrets"; }; }'
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


def test_flake_module_uses_the_flake_package(tmp_path: Path) -> None:
    lib = nixpkgs_lib()
    module = f"""let self = {_flake(lib)}; in {{
  imports = [ self.nixosModules.default ];
  aux.secrets.a.store = "a";
  systemd.sysusers.enable = true;
}}
"""
    r = evaluate(module, tmp_path, "services")
    start = r["services"]["aux-secrets-install"]["serviceConfig"]["ExecStart"]
    assert start.startswith(
        "/nix/store/11111111111111111111111111111111-aux-secrets/bin/aux-secrets install"
    )


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
  }} // lib.genAttrs [ "setuptools" "wheel" "argon2-cffi" "cryptography" "gmpy2" "pynacl" "rich" "tomli-w" "typer" ] (n: n);
  p = import {REPO / "nix" / "package.nix"} {{ inherit lib; python3Packages = py; systemd = "systemd"; openssh = "openssh"; }};
in {{
  inherit (p) pname version pythonImportsCheck;
  deps = map (d: d.pname or d) p.dependencies;
  wheel = {{ inherit (p.passthru.pyrage.src) pname version platform hash abi; }};
}}"""
    r = nix_eval(expr, tmp_path)
    assert r["pname"] == "aux-secrets"
    assert (
        r["version"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    )
    assert r["deps"][0] == "pyrage"
    assert set(r["deps"][1:]) == {
        "argon2-cffi",
        "cryptography",
        "gmpy2",
        "pynacl",
        "rich",
        "tomli-w",
        "typer",
    }
    assert r["wheel"]["platform"] == "manylinux_2_17_x86_64.manylinux2014_x86_64"
    assert r["wheel"]["hash"].startswith("sha256-")
