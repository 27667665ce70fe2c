# The aux-secrets Python application, built from pyproject.toml.
#
# The build runs the tests that need no other program and no root (`checkTestPaths`);
# the flake's `checks.<system>.python` runs the whole suite with gokey, age,
# systemd-creds, ssh, git, nix and swtpm on PATH.
{
  lib,
  python3Packages,
  systemd,
  openssh,
}:
let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  # Tests of the pure core, the formats and the CLI in-process: no gokey, age,
  # systemd-creds, ssh, git, nix or swtpm, no root, no network (tests/test_nix_package.py
  # keeps this list honest). The others fail without those programs by design.
  checkTestPaths = [
    "tests/test_audit.py"
    "tests/test_audit_vectors.py"
    "tests/test_auxv1.py"
    "tests/test_auxv1_vectors.py"
    "tests/test_bundle.py"
    "tests/test_bundle_manifest.py"
    "tests/test_derive_passwords.py"
    "tests/test_derive_request.py"
    "tests/test_fs.py"
    "tests/test_gokey_vectors.py"
    "tests/test_installer_api.py"
    "tests/test_installer_systemctl.py"
    "tests/test_lint.py"
    "tests/test_manifest.py"
    "tests/test_manifest_cli.py"
    "tests/test_manifest_fuzz.py"
    "tests/test_manifest_schema.py"
    "tests/test_password.py"
    "tests/test_plan.py"
    "tests/test_plan_select.py"
    "tests/test_provision_units.py"
    "tests/test_publish.py"
    "tests/test_render_cli.py"
    "tests/test_render_resolve.py"
    "tests/test_rotation.py"
    "tests/test_store_core.py"
    "tests/test_store_vectors.py"
    "tests/test_template_fuzz.py"
    "tests/test_transport_model.py"
  ];
  # Not every nixpkgs has pyrage; fall back to the upstream wheels.
  pyrage = python3Packages.pyrage or (python3Packages.callPackage ./pyrage.nix { });
in
python3Packages.buildPythonApplication {
  pname = "aux-secrets";
  passthru = { inherit pyrage checkTestPaths; };
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
        ".hypothesis"
        "build"
        "dist"
        "result"
      ])
      && !(lib.hasSuffix ".egg-info" base);
  };

  build-system = with python3Packages; [
    setuptools
    wheel
  ];

  # pyproject's dependencies and its `strength` extra: zxcvbn gives init and seed
  # rewrap the dictionary-based weak-password warning instead of a length check.
  dependencies = [ pyrage ] ++ (with python3Packages; [
    argon2-cffi
    cryptography
    gmpy2
    pynacl
    rich
    tomli-w
    typer
    zxcvbn
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

  # Shell completion and the man page, generated from the CLI's own help.
  postInstall = ''
    aux() { PYTHONPATH=$out/${python3Packages.python.sitePackages}:$PYTHONPATH ${python3Packages.python.interpreter} -m aux_secrets "$@"; }
    mkdir -p $out/share/bash-completion/completions $out/share/zsh/site-functions $out/share/fish/vendor_completions.d $out/share/man/man1
    aux completion bash > $out/share/bash-completion/completions/aux-secrets
    aux completion zsh > $out/share/zsh/site-functions/_aux-secrets
    aux completion fish > $out/share/fish/vendor_completions.d/aux-secrets.fish
    aux manpage > $out/share/man/man1/aux-secrets.1
  '';

  nativeCheckInputs = with python3Packages; [
    pytestCheckHook
    hypothesis
    pytest-timeout
  ];
  enabledTestPaths = checkTestPaths;
  preCheck = ''
    export HOME=$(mktemp -d)
  '';
  pythonImportsCheck = [
    "aux_secrets"
    "aux_secrets.cli.main"
  ];

  meta = {
    description = "Vaultless secrets for NixOS: derive, store, provision and install";
    license = lib.licenses.mit;
    mainProgram = "aux-secrets";
    # Where pyrage is: nixpkgs' own, or the prebuilt wheels (x86_64 and aarch64 Linux).
    platforms = lib.intersectLists lib.platforms.linux (pyrage.meta.platforms or lib.platforms.linux);
  };
}
