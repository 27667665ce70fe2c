# cfg -> manifest (docs/spec/manifest.md), written with builtins only.
#
# The NixOS module calls this with the values of its `aux` options; CI calls it with the
# example configurations in tests/fixtures/nix/ through plain
# `nix-instantiate --store dummy:// --eval --strict --json` and compares the result with
# the golden manifests in tests/fixtures/manifests/ (no nixpkgs needed).
#
# Input: { host; settings ? {}; secrets ? {}; templates ? {}; }, shaped like the module's
# options. A missing or null attribute takes the manifest default, so partial example
# configurations work as well as the module's fully defaulted ones. An attribute this
# function does not know is an evaluation error naming it: nothing is silently dropped.
# Values are passed through as they are; `aux-secrets manifest check` (run when the
# manifest is built) and the module's assertions refuse what is wrong.
{
  host,
  settings ? { },
  secrets ? { },
  templates ? { },
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    hasAttr
    listToAttrs
    mapAttrs
    match
    replaceStrings
    throw
    ;

  # `a.n`, unless absent or null.
  get =
    attrs: name: default:
    if hasAttr name attrs && attrs.${name} != null then attrs.${name} else default;

  only =
    where: allowed: attrs:
    let
      unknown = filter (name: !(builtins.elem name allowed)) (attrNames attrs);
    in
    if unknown == [ ] then
      attrs
    else
      throw "aux-secrets: unknown attribute ${where}.${builtins.head unknown} (known: ${concatStringsSep ", " allowed})";

  quote = name: if match "[A-Za-z_][A-Za-z0-9_]*" name != null then name else "\"${name}\"";

  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];

  # talos/hmac-key.v2 -> TALOS_HMAC_KEY_V2; a leading digit gets a "_".
  envNameOf =
    name:
    let
      env = replaceStrings ([ "/" "." "-" ] ++ lower) ([ "_" "_" "_" ] ++ upper) name;
    in
    if match "[0-9].*" name != null then "_" + env else env;

  # Credential names cannot hold "/".
  credentialNameOf = replaceStrings [ "/" ] [ "-" ];

  s = only "aux.settings" [
    "package"
    "runtimeDir"
    "generationsDir"
    "usersDir"
    "storeDir"
    "backend"
    "tpm2"
    "hostKeys"
    "bundleSigners"
    "keepGenerations"
    "group"
    "systemctl"
    "useTmpfs"
    "useSystemdActivation"
  ] settings;

  tpm2 = only "aux.settings.tpm2" [ "enable" "hostKey" "device" "pcrs" ] (get s "tpm2" { });
  tpm2Enabled = get tpm2 "enable" false;

  runtimeDir = get s "runtimeDir" "/run/aux-secrets";
  usersDir = get s "usersDir" "/run/aux-secrets-for-users";

  manifestSettings = {
    inherit runtimeDir usersDir;
    generationsDir = get s "generationsDir" "/run/aux-secrets.d";
    storeDir = get s "storeDir" "/var/lib/aux-secrets";
    backend = get s "backend" "systemd-creds";
    credentialKey =
      if !tpm2Enabled then
        "host"
      else if get tpm2 "hostKey" true then
        "host+tpm2"
      else
        "tpm2";
    tpm2 = {
      device = get tpm2 "device" null;
      pcrs = get tpm2 "pcrs" "7";
    };
    hostKeys = get s "hostKeys" [ "/etc/ssh/ssh_host_ed25519_key" ];
    bundleSigners = get s "bundleSigners" [ ];
    keepGenerations = get s "keepGenerations" 5;
    group = get s "group" "keys";
    systemctl = get s "systemctl" [ "systemctl" ];
  };

  rotationOf =
    where: r:
    let
      rot = only where [ "period" "retired" "ahead" ] r;
    in
    {
      period = get rot "period" null;
      retired = get rot "retired" 0;
      ahead = get rot "ahead" 0;
    };

  deriveOf =
    where: d:
    let
      der = only where [ "realm" "type" "length" "charset" "encoding" "public" "rotation" ] d;
      rotation = get der "rotation" null;
    in
    {
      realm = get der "realm" null;
      type = get der "type" "pass";
      length = get der "length" null;
      charset = get der "charset" "gokey";
      encoding = get der "encoding" null;
      public = get der "public" false;
      rotation = if rotation == null then null else rotationOf "${where}.rotation" rotation;
    };

  secretOf =
    name: raw:
    let
      where = "aux.secrets.${quote name}";
      sec = only where [
        "derive"
        "store"
        "storeRetired"
        "path"
        "owner"
        "group"
        "mode"
        "format"
        "envName"
        "restartUnits"
        "reloadUnits"
        "neededForUsers"
        "credential"
      ] raw;
      neededForUsers = get sec "neededForUsers" false;
      derive = get sec "derive" null;
      store = get sec "store" null;
      storeRetired = get sec "storeRetired" 0;
      credential = get sec "credential" null;
      cred = only "${where}.credential" [ "name" "units" ] credential;
    in
    {
      source =
        (if derive == null then { } else { derive = deriveOf "${where}.derive" derive; })
        // (if store == null then { } else { inherit store; })
        // (if store == null || storeRetired == 0 then { } else { retired = storeRetired; });
      path = get sec "path" "${if neededForUsers then usersDir else runtimeDir}/${name}";
      owner = get sec "owner" "root";
      group = get sec "group" "root";
      mode = get sec "mode" "0400";
      format = get sec "format" "value";
      envName = get sec "envName" (envNameOf name);
      restartUnits = get sec "restartUnits" [ ];
      reloadUnits = get sec "reloadUnits" [ ];
      inherit neededForUsers;
      credential =
        if credential == null then
          null
        else
          {
            name = get cred "name" (credentialNameOf name);
            units = get cred "units" [ ];
          };
    };

  templateOf =
    name: raw:
    let
      where = "aux.templates.${quote name}";
      tpl = only where [
        "content"
        "file"
        "format"
        "path"
        "owner"
        "group"
        "mode"
        "restartUnits"
        "reloadUnits"
      ] raw;
      file = get tpl "file" null;
    in
    {
      content = get tpl "content" (if file == null then "" else builtins.readFile file);
      format = get tpl "format" "text";
      path = get tpl "path" "${runtimeDir}/templates/${name}";
      owner = get tpl "owner" "root";
      group = get tpl "group" "root";
      mode = get tpl "mode" "0400";
      restartUnits = get tpl "restartUnits" [ ];
      reloadUnits = get tpl "reloadUnits" [ ];
    };
in
{
  version = 1;
  inherit host;
  settings = manifestSettings;
  secrets = mapAttrs secretOf secrets;
  templates = mapAttrs templateOf templates;
}
