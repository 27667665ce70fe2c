# Module evaluation as a flake check: every example configuration of tests/fixtures/nix/
# must give its golden manifest through the real NixOS module system, with no failed
# assertion. (tests/test_nix_module.py checks units and each assertion in more detail.)
{ pkgs }:
let
  inherit (pkgs) lib;
  fixtures = ../../tests/fixtures;
  names = map (lib.removeSuffix ".nix") (builtins.attrNames (builtins.readDir (fixtures + "/nix")));

  check =
    name:
    let
      example = import (fixtures + "/nix/${name}.nix");
      result = import ./module-eval.nix {
        inherit lib;
        configuration = import ./example-host.nix example { systemd.sysusers.enable = true; };
      };
      golden = builtins.fromJSON (builtins.readFile (fixtures + "/manifests/${name}.json"));
      # The module always adds --no-block (the goldens keep the manifest default).
      produced = lib.recursiveUpdate result.manifest { settings.systemctl = golden.settings.systemctl; };
    in
    if result.failedAssertions != [ ] then
      throw "${name}: assertions failed: ${builtins.concatStringsSep "; " result.failedAssertions}"
    else if result.manifest.settings.systemctl != golden.settings.systemctl ++ [ "--no-block" ] then
      throw "${name}: the module's systemctl is not the golden one with --no-block"
    else if produced != golden then
      throw "${name}: the module's manifest differs from tests/fixtures/manifests/${name}.json"
    else
      name;
in
pkgs.runCommand "aux-secrets-module-eval" { checked = map check names; } ''
  echo "module evaluation matches the golden manifests: $checked" > $out
''
