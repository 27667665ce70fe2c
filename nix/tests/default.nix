# checks.<system> of the flake: the Python suite, module evaluation, NixOS VM tests.
#
# The VM tests need KVM (`nix flake check` on a machine with /dev/kvm); the others do not.
{ pkgs, self }:
let
  inherit (pkgs) lib;
  package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;

  python = pkgs.python3.withPackages (
    ps: with ps; [
      (ps.pyrage or (ps.callPackage ../pyrage.nix { }))
      argon2-cffi
      cryptography
      gmpy2
      pynacl
      rich
      tomli-w
      typer
      zxcvbn
      hypothesis
      pytest
      pytest-timeout
    ]
  );

  vmTest = file: pkgs.testers.runNixOSTest (import file { inherit self; });
in
{
  # The whole Python suite with the real programs it drives, and nixpkgs' lib for the
  # module-evaluation tests.
  python =
    pkgs.runCommand "aux-secrets-python-tests"
      {
        nativeBuildInputs = [
          python
          pkgs.age
          pkgs.git
          pkgs.gokey
          pkgs.nix
          pkgs.openssh
          pkgs.swtpm
          pkgs.systemd
          pkgs.tpm2-tools
        ];
      }
      ''
        cp -r ${package.src} source
        chmod -R u+w source
        cd source
        export HOME=$TMPDIR PYTHONPATH=$PWD/src AUX_SECRETS_NIXPKGS_LIB=${pkgs.path}/lib
        python -m pytest -q -p no:cacheprovider
        touch $out
      '';

  module-eval = import ./eval-checks.nix { inherit pkgs; };

  vm-install = vmTest ./vm-install.nix;
  vm-users = vmTest ./vm-users.nix;
  vm-tpm2 = vmTest ./vm-tpm2.nix;
  vm-rotation = vmTest ./vm-rotation.nix;
}
