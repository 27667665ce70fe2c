"""The booted-host suite: a Debian 12 systemd host in systemd-nspawn, or in qemu with a TPM."""
