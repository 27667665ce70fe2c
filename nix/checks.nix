# cfg -> NixOS assertions ([ { assertion; message; } ]), written with builtins only.
#
# Same input as ./manifest.nix. Every message names the option to fix, so a mistake fails
# `nixos-rebuild build` with a line a person can act on. `aux-secrets manifest check`,
# run when the manifest is built, refuses the rest (it knows the full manifest rules).
cfg:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    head
    isList
    isString
    length
    match
    split
    ;

  manifest = import ./manifest.nix cfg;
  secretsCfg = cfg.secrets or { };
  templatesCfg = cfg.templates or { };

  quote = name: if match "[A-Za-z_][A-Za-z0-9_]*" name != null then name else "\"${name}\"";
  secretOpt = name: "aux.secrets.${quote name}";
  templateOpt = name: "aux.templates.${quote name}";

  set = attrs: name: (attrs.${name} or null) != null;
  validName =
    name:
    match "[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*" name != null
    && match "(.*/)?\\.\\.(/.*)?" name == null;
  nameRule = "segments of letters, digits, _ . - joined by /, no ..";
  isMode = mode: isString mode && match "[0-7]{4}" mode != null;
  isAbsolute = path: isString path && match "/.*" path != null;

  placeholderRe = "\\{\\{aux:([^:{}]+)(:([^:{}]+))?}}";
  fields = [
    "current"
    "retired"
    "public"
  ];

  secretChecks =
    name:
    let
      raw = secretsCfg.${name};
      spec = manifest.secrets.${name};
      opt = secretOpt name;
      sources = filter (set raw) [
        "derive"
        "store"
      ];
      derive = raw.derive or null;
      realm = if derive == null then "" else derive.realm or "";
      rotating = derive != null && (derive.rotation or null) != null;
      credentialUnits = if spec.credential == null then [ ] else spec.credential.units;
    in
    [
      {
        assertion = validName name;
        message = "${opt}: the name is not valid (${nameRule})";
      }
      {
        assertion = length sources == 1;
        message = "${opt}: set exactly one of ${opt}.derive or ${opt}.store (${
          if sources == [ ] then "neither is set" else "both are set"
        })";
      }
      {
        assertion = isMode spec.mode;
        message = "${opt}.mode = \"${toString spec.mode}\" is not four octal digits like \"0400\"";
      }
      {
        assertion = isAbsolute spec.path;
        message = "${opt}.path = \"${toString spec.path}\" is not an absolute path";
      }
      {
        assertion = !spec.neededForUsers || (spec.owner == "root" && spec.group == "root");
        message = "${opt}.owner and .group must be \"root\" when ${opt}.neededForUsers is set (secrets for users are installed before users and groups exist)";
      }
      {
        assertion = derive == null || realm != "";
        message = "${opt}.derive.realm must be set (the public name the secret is derived from)";
      }
      {
        assertion = derive == null || (rotating == (match ".*\\{period}.*" realm != null));
        message =
          if rotating then
            "${opt}.derive.realm = \"${realm}\" must contain {period} because ${opt}.derive.rotation is set"
          else
            "${opt}.derive.realm = \"${realm}\" contains {period} but ${opt}.derive.rotation is not set";
      }
      {
        assertion = filter (unit: match ".*\\.service" unit == null) credentialUnits == [ ];
        message = "${opt}.credential.units must list .service units (LoadCredentialEncrypted= is a service setting)";
      }
    ];

  # [ [ secret field ] ... ] used in a template, or a string naming the first malformed one.
  references =
    content:
    let
      parts = split placeholderRe content;
      texts = filter isString parts;
      malformed = filter (text: match ".*\\{\\{aux:.*" text != null) texts;
    in
    {
      refs = map (groups: [
        (head groups)
        (if builtins.elemAt groups 2 == null then "current" else builtins.elemAt groups 2)
      ]) (filter isList parts);
      inherit malformed;
    };

  templateChecks =
    name:
    let
      spec = manifest.templates.${name};
      raw = templatesCfg.${name};
      opt = templateOpt name;
      found = references spec.content;
      unknownSecrets = filter (ref: !(manifest.secrets ? ${head ref})) found.refs;
      unknownFields = filter (ref: !(elem (builtins.elemAt ref 1) fields)) found.refs;
      show = ref: "{{aux:${head ref}:${builtins.elemAt ref 1}}}";
    in
    [
      {
        assertion = validName name;
        message = "${opt}: the name is not valid (${nameRule})";
      }
      {
        assertion = !(set raw "content" && set raw "file");
        message = "${opt}: set only one of ${opt}.content or ${opt}.file";
      }
      {
        assertion = found.malformed == [ ];
        message = "${opt}.content has a malformed placeholder; write {{aux:NAME}} or {{aux:NAME:current|retired|public}}, best through config.aux.placeholder";
      }
      {
        assertion = unknownSecrets == [ ];
        message = "${opt}.content uses ${show (head unknownSecrets)}, but ${secretOpt (head (head unknownSecrets))} is not defined";
      }
      {
        assertion = unknownFields == [ ];
        message = "${opt}.content uses ${show (head unknownFields)}; the field must be one of ${concatStringsSep ", " fields}";
      }
      {
        assertion = isMode spec.mode;
        message = "${opt}.mode = \"${toString spec.mode}\" is not four octal digits like \"0400\"";
      }
      {
        assertion = isAbsolute spec.path;
        message = "${opt}.path = \"${toString spec.path}\" is not an absolute path";
      }
    ];

  files =
    map (name: {
      path = manifest.secrets.${name}.path;
      opt = "${secretOpt name}.path";
    }) (attrNames manifest.secrets)
    ++ map (name: {
      path = manifest.templates.${name}.path;
      opt = "${templateOpt name}.path";
    }) (attrNames manifest.templates);

  duplicates = filter (file: length (filter (other: other.path == file.path) files) > 1) files;

  # aux-secrets manifest check validates the keys fully; this catches the common slips early.
  badSigners = filter (
    signer:
    builtins.match "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}( .*)?|[A-Za-z0-9+/]{43}=" signer == null
  ) manifest.settings.bundleSigners;

  settingsChecks = [
    {
      assertion = duplicates == [ ];
      message =
        let
          path = (head duplicates).path;
        in
        "${concatStringsSep " and " (map (f: f.opt) (filter (f: f.path == path) duplicates))} all write ${path}; give each its own path";
    }
    {
      assertion = manifest.settings.backend != "age" || manifest.settings.hostKeys != [ ];
      message = "aux.settings.hostKeys must not be empty when aux.settings.backend = \"age\" (enable services.openssh or list the keys)";
    }
    {
      assertion = badSigners == [ ];
      message = "aux.settings.bundleSigners: ${builtins.toJSON (head badSigners)} is not an ssh-ed25519 key line or the base64 of a 32-byte key (print the vault's with: aux-secrets signer)";
    }
  ];
in
# Messages are only evaluated for failed assertions (NixOS does the same).
concatLists (map secretChecks (attrNames secretsCfg))
++ concatLists (map templateChecks (attrNames templatesCfg))
++ settingsChecks
