{
  description = "aux-secrets: vaultless secrets for NixOS (derive, store, provision, install)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: {
        aux-secrets = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: rec {
        aux-secrets = pkgs.callPackage ./nix/package.nix { };
        default = aux-secrets;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          meta.description = "The aux-secrets command line";
        };
      });

      # The module builds the package with the system's own nixpkgs (one Python in the
      # closure); with `inputs.aux-secrets.inputs.nixpkgs.follows = "nixpkgs"` the flake's
      # packages are built from it too. The key lets both names be imported together.
      nixosModules.aux-secrets = {
        key = "aux-secrets#nixosModules.aux-secrets";
        imports = [ ./modules/aux-secrets.nix ];
      };
      nixosModules.default = self.nixosModules.aux-secrets;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages (
              ps: with ps; [
                (ps.pyrage or (ps.callPackage ./nix/pyrage.nix { }))
                argon2-cffi
                cryptography
                gmpy2
                pynacl
                rich
                tomli-w
                typer
                zxcvbn
                hypothesis
                mypy
                pytest
                pytest-timeout
              ]
            ))
            pkgs.ruff
            pkgs.age
            pkgs.gokey
            pkgs.nix
            pkgs.openssh
            pkgs.swtpm
            pkgs.tpm2-tools
          ];
          shellHook = ''
            export AUX_SECRETS_NIXPKGS_LIB=${nixpkgs}/lib
          '';
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      checks = forAllSystems (
        pkgs:
        import ./nix/tests {
          inherit pkgs self;
        }
      );
    };
}
