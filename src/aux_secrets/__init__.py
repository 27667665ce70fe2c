"""aux-secrets: vaultless secrets for NixOS and Aux."""

__version__ = "0.1.0"
