# Part of modules/aux-secrets.nix: every owner and group a secret or template names must be
# declared in users.users / users.groups (or be a numeric id). The installer would refuse
# an unknown account only on the host, at install time; here it fails the build instead,
# naming the option to fix.
{ config, lib, ... }:
let
  cfg = config.aux;
  manifest = cfg.manifest;

  users = map (u: u.name) (lib.attrValues config.users.users);
  groups = map (g: g.name) (lib.attrValues config.users.groups);
  numeric = id: builtins.match "[0-9]+" id != null;

  quote = name: if builtins.match "[A-Za-z_][A-Za-z0-9_]*" name != null then name else "\"${name}\"";

  checksOf =
    opt: file:
    [
      {
        assertion = numeric file.owner || lib.elem file.owner users;
        message = "${opt}.owner = \"${file.owner}\" is not declared in users.users (declare the user, or give a numeric uid)";
      }
      {
        assertion = numeric file.group || lib.elem file.group groups;
        message = "${opt}.group = \"${file.group}\" is not declared in users.groups (declare the group, or give a numeric gid)";
      }
    ];
in
{
  config = lib.mkIf (cfg.secrets != { } || cfg.templates != { }) {
    assertions =
      lib.concatLists (lib.mapAttrsToList (name: checksOf "aux.secrets.${quote name}") manifest.secrets)
      ++ lib.concatLists (
        lib.mapAttrsToList (name: checksOf "aux.templates.${quote name}") manifest.templates
      )
      ++ [
        {
          assertion = numeric manifest.settings.group || lib.elem manifest.settings.group groups;
          message = "aux.settings.group = \"${manifest.settings.group}\" is not declared in users.groups";
        }
      ];
  };
}
