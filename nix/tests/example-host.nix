# An example of tests/fixtures/nix/ as a host configuration for nix/tests/module-eval.nix:
# its secrets, templates and settings, sshd on, and the users and groups it names declared
# (as system users, whose primary group is the one the example gives them).
# Used by ./eval-checks.nix and tests/test_nix_module.py.
example: extra:
{ lib, ... }:
let
  files = lib.attrValues (example.secrets or { }) ++ lib.attrValues (example.templates or { });
  named = attr: lib.unique (lib.filter (n: n != "root") (map (f: f.${attr} or "root") files));
  groupOf = owner: (lib.findFirst (f: (f.owner or "root") == owner) { } files).group or owner;
in
{
  imports = [ extra ];
  networking.hostName = example.host;
  services.openssh.enable = true; # its host key opens the bundles
  aux.secrets = example.secrets or { };
  aux.templates = example.templates or { };
  aux.settings = example.settings or { };
  users.users = lib.genAttrs (named "owner") (owner: {
    isSystemUser = true;
    group = groupOf owner;
  });
  users.groups = lib.genAttrs (named "group" ++ named "owner") (_: { });
}
