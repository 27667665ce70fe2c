# pyrage (Python bindings for rage, the Rust age), used when python3Packages has none:
# the upstream abi3 manylinux wheels, patched for the Nix store.
{
  lib,
  stdenv,
  buildPythonPackage,
  fetchPypi,
  autoPatchelfHook,
}:
let
  wheels = {
    x86_64-linux = {
      platform = "manylinux_2_17_x86_64.manylinux2014_x86_64";
      hash = "sha256-f06wy8K0ruXerJhixHs4lYZt9VVBU5Ua+CLpxYHmhVg=";
    };
    aarch64-linux = {
      platform = "manylinux_2_17_aarch64.manylinux2014_aarch64";
      hash = "sha256-+GizYMzT+DYybUK1Mvrj6OuDQKiMygo5wK4Q/OaPbMU=";
    };
  };
  wheel =
    wheels.${stdenv.hostPlatform.system}
      or (throw "pyrage: no prebuilt wheel for ${stdenv.hostPlatform.system}");
in
buildPythonPackage rec {
  pname = "pyrage";
  version = "1.4.0";
  format = "wheel";

  src = fetchPypi {
    inherit pname version format;
    inherit (wheel) platform hash;
    dist = "cp310";
    python = "cp310";
    abi = "abi3";
  };

  nativeBuildInputs = [ autoPatchelfHook ];
  buildInputs = [ stdenv.cc.cc.lib ];

  pythonImportsCheck = [ "pyrage" ];

  meta = {
    description = "Python bindings for rage (age in Rust)";
    homepage = "https://github.com/woodruffw/pyrage";
    license = lib.licenses.mit;
    sourceProvenance = [ lib.sourceTypes.binaryNativeCode ];
    platforms = builtins.attrNames wheels;
  };
}
