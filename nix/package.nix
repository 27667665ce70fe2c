# The aux-secrets Python application, built from pyproject.toml.
#
# Tests do not run here (they need gokey, swtpm, sshd and friends); the flake's
# `checks.<system>.python` runs the whole suite with those programs on PATH.
{
  lib,
  python3Packages,
  systemd,
  openssh,
}:
let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  # Not every nixpkgs has pyrage; fall back to the upstream wheels.
  pyrage = python3Packages.pyrage or (python3Packages.callPackage ./pyrage.nix { });
in
python3Packages.buildPythonApplication {
  pname = "aux-secrets";
  passthru = { inherit pyrage; };
  inherit (pyproject.project) version;
  pyproject = true;

  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: type:
      let
        base = baseNameOf path;
      in
      lib.cleanSourceFilter path type
      && !(builtins.elem base [
        ".venv"
        ".mypy_cache"
        ".pytest_cache"
        ".ruff_cache"
        "__pycache__"
        "result"
      ]);
  };

  build-system = with python3Packages; [
    setuptools
    wheel
  ];

  dependencies = [ pyrage ] ++ (with python3Packages; [
    argon2-cffi
    cryptography
    gmpy2
    pynacl
    rich
    tomli-w
    typer
  ]);

  # systemd-creds for the local store, ssh for provisioning; both also on any NixOS host.
  makeWrapperArgs = [
    "--suffix"
    "PATH"
    ":"
    (lib.makeBinPath [
      systemd
      openssh
    ])
  ];

  # pyproject pins the typer minor release measured for start-up time; any typer >= 0.12
  # works (cli/main.py handles both its vendored and the standalone click).
  pythonRelaxDeps = [ "typer" ];

  doCheck = false;
  pythonImportsCheck = [
    "aux_secrets"
    "aux_secrets.cli.main"
  ];

  meta = {
    description = "Vaultless secrets for NixOS: derive, store, provision and install";
    license = lib.licenses.mit;
    mainProgram = "aux-secrets";
    platforms = lib.platforms.linux;
  };
}
