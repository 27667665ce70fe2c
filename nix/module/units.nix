# Part of modules/aux-secrets.nix: what installs the secrets on the host.
#
# With systemd-sysusers, userborn or nixos-init (aux.settings.useSystemdActivation), two
# oneshot units early in boot:
#
#   aux-secrets-install-for-users  before systemd-sysusers/userborn: the neededForUsers tree
#   (users and groups are made)
#   aux-secrets-install            after local-fs.target, the users (and tpm2.target with
#                                  tpm2.enable), before sysinit.target: every ordinary
#                                  service starts with its secrets in place
#
# Each unit mounts its RAM filesystem itself (ExecStartPre), as sops-nix and agenix do: an
# fstab entry would be ordered after local-fs-pre.target, which is after
# systemd-tmpfiles-setup-dev, which is after the users are made, which is after the
# for-users install: an ordering cycle that systemd breaks by dropping a job, sometimes the
# one that creates the users. tests/test_nix_units.py renders these units and checks them
# with systemd-analyze verify against NixOS's and systemd's own.
#
# Without them, activation scripts do the same (`auxSecretsForUsers` before `users`,
# `auxSecrets` after users and groups).
#
# One failure policy for both: `aux-secrets install` exits 75 when no bundle has been
# delivered yet; that is a warning (the switch succeeds, the boot goes on), every other
# failure fails the unit and so the switch.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.aux;
  settings = cfg.settings;
  manifest = cfg.manifest;
  manifestFile = config.system.build.auxSecretsManifest;

  # `aux-secrets install`: no bundle delivered to this host yet (cli/hostside.py).
  NO_BUNDLE = 75;

  aux-secrets = lib.getExe settings.package;
  installCommand = extra: "${aux-secrets} install --manifest ${manifestFile}${extra}";
  # In a switch the units go to switch-to-configuration's lists, which starts a listed unit
  # that is not running: a unit the new system lacks would end the switch with status 4.
  # NixOS's activation script sets $systemConfig to the system being activated, whose
  # etc/systemd/system holds every unit of it; a unit with no file there is skipped.
  activationListsArgs = " --activation-lists --units-dir \"$systemConfig/etc/systemd/system\"";

  secretsForUsers = lib.filterAttrs (_: s: s.neededForUsers) manifest.secrets;
  hasForUsers = secretsForUsers != { };
  hasRegular =
    lib.length (lib.attrNames manifest.secrets) > lib.length (lib.attrNames secretsForUsers)
    || manifest.templates != { };

  # RAM filesystem for generations: ramfs never swaps; tmpfs needs noswap (Linux >= 6.4).
  fsType = if settings.useTmpfs then "tmpfs" else "ramfs";
  fsOptions = lib.concatStringsSep "," (
    [ "mode=0751" "nosuid" "nodev" "noexec" ] ++ lib.optional settings.useTmpfs "noswap"
  );
  # Mounts DIR unless the right filesystem is there. A filesystem of the other type (after
  # useTmpfs changed) is detached lazily (open files stay readable) and replaced: the
  # install that follows writes a complete new generation into it.
  mountScript = pkgs.writeShellScript "aux-secrets-mount" ''
    set -eu
    dir=$1
    ${pkgs.coreutils}/bin/mkdir -p "$dir"
    have=$(${pkgs.util-linux}/bin/findmnt -n -o FSTYPE --mountpoint "$dir" | ${pkgs.coreutils}/bin/tail -n 1 || true)
    if [ "$have" = ${fsType} ]; then
      exit 0
    fi
    if [ -n "$have" ]; then
      echo "aux-secrets: $dir is $have, not ${fsType}: replacing it (a new generation follows)" >&2
      ${pkgs.util-linux}/bin/umount --lazy "$dir"
    fi
    ${pkgs.util-linux}/bin/mount -t ${fsType} -o ${fsOptions} none "$dir"
  '';
  mountCommand = dir: "${mountScript} ${lib.escapeShellArg dir}";
  usersGenerations = "${settings.usersDir}.d";

  # Changes to any of these restart the unit in a switch (a changed filesystem type too:
  # otherwise only the mount would change and the runtime directory would dangle).
  triggers = [
    manifestFile
    "${fsType}:${fsOptions}"
  ];

  userUnits = [
    "systemd-sysusers.service"
    "userborn.service"
  ];
  tpm2Units = lib.optional settings.tpm2.enable "tpm2.target";

  earlyOneshot = {
    restartTriggers = triggers;
    conflicts = [ "shutdown.target" ];
    unitConfig.DefaultDependencies = false;
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      UMask = "0077";
      SuccessExitStatus = [ NO_BUNDLE ];
    };
  };

  # The same policy in an activation script: 75 is a warning, anything else fails the
  # snippet (the switch then reports "Activation script snippet ... failed").
  activationRun = what: command: ''
    _auxStatus=0
    ${command} || _auxStatus=$?
    if [ "$_auxStatus" = ${toString NO_BUNDLE} ]; then
      echo "aux-secrets: warning: ${what}: no bundle has been delivered to this host yet; run aux-secrets provision --host ${manifest.host}" >&2
    elif [ "$_auxStatus" != 0 ]; then
      echo "aux-secrets: ${what} failed (exit status $_auxStatus); see the lines above" >&2
      _localstatus=$_auxStatus
      _status=1
    fi
  '';

  periods = lib.unique (
    lib.concatMap (
      s:
      lib.optional (
        s.source ? derive && s.source.derive.rotation != null
      ) s.source.derive.rotation.period
    ) (lib.attrValues manifest.secrets)
  );
  # When each period starts (UTC), for the rotation timer.
  onCalendar = {
    daily = "*-*-* 00:00:00 UTC";
    weekly = "Mon *-*-* 00:00:00 UTC";
    monthly = "*-*-01 00:00:00 UTC";
    quarterly = "*-01,04,07,10-01 00:00:00 UTC";
    yearly = "*-01-01 00:00:00 UTC";
  };

  # LoadCredentialEncrypted= for the services of `credential.units`. Before the first
  # delivery the sealed file does not exist; SetCredential= is then used instead
  # (systemd.exec: "the latter will act as default"), so the service still starts (a
  # systemd-networkd that does not start would also cut the way to provision the host).
  # Its value is one newline: empty once a trailing newline is stripped, so no consumer
  # takes it for a password or a key (a truly empty SetCredential= in a unit file fails
  # the service on systemd 252, tests/test_nix_boot.py).
  credentialSecrets = lib.filter (s: s.credential != null) (lib.attrValues manifest.secrets);
  credentialUnits = lib.mkMerge (
    lib.concatMap (
      s:
      map (unit: {
        ${lib.removeSuffix ".service" unit} = {
          serviceConfig.LoadCredentialEncrypted = [
            "${s.credential.name}:${settings.storeDir}/credentials/${s.credential.name}.cred"
          ];
          serviceConfig.SetCredential = [ "${s.credential.name}:\\n" ];
          unitConfig.RequiresMountsFor = [ settings.storeDir ];
        };
      }) s.credential.units
    ) credentialSecrets
  );

  # Users whose hashedPasswordFile is a neededForUsers secret.
  forUsersPaths = lib.mapAttrsToList (_: s: s.path) secretsForUsers;
  usersWithSecretHash = lib.filter (
    u: u.hashedPasswordFile or null != null && lib.elem u.hashedPasswordFile forUsersPaths
  ) (lib.attrValues config.users.users);

  sysusers = options.systemd ? sysusers && config.systemd.sysusers.enable;
  nixosInit = options.system ? nixos-init && config.system.nixos-init.enable;

  # A separate file system holding the store that is mounted after switch-root: the
  # for-users install, before the users are made, cannot wait for it (same cycle as above).
  storeMounts = lib.filter (
    fs:
    let
      point = fs.mountPoint or "";
    in
    point != "/"
    && !(fs.neededForBoot or false)
    && (settings.storeDir == point || lib.hasPrefix "${point}/" settings.storeDir)
  ) (lib.attrValues config.fileSystems);
in
lib.mkIf (cfg.secrets != { } || cfg.templates != { }) (
  lib.mkMerge [
    {
      systemd.services = credentialUnits;
      system.build.auxSecretsMountScript = mountScript;

      assertions = [
        {
          assertion = settings.useSystemdActivation || !nixosInit;
          message = "aux.settings.useSystemdActivation must be true with system.nixos-init.enable (nixos-init runs no activation scripts, so nothing would install the secrets)";
        }
        {
          assertion = !(settings.useSystemdActivation && hasForUsers && storeMounts != [ ]);
          message = "aux.settings.storeDir (${settings.storeDir}) is on the file system ${(lib.head storeMounts).mountPoint}, mounted after the users are made, but secrets with neededForUsers are installed before that: set fileSystems.\"${(lib.head storeMounts).mountPoint}\".neededForBoot = true, or keep storeDir on /";
        }
        {
          assertion = !(hasForUsers && settings.tpm2.enable);
          message = "aux.settings.tpm2.enable cannot be used with neededForUsers secrets: they are installed before the users are made, and the TPM device appears only after udev, which starts later";
        }
      ]
      ++ map (u: {
        assertion = !(sysusers && (u.isNormalUser or false));
        message = "users.users.${u.name}.hashedPasswordFile is an aux-secrets neededForUsers secret, but ${u.name} is a normal user: systemd-sysusers creates only system users (use services.userborn, or isSystemUser)";
      }) usersWithSecretHash;

      # Dry activation: what the install would change, nothing written.
      system.activationScripts.auxSecretsDryActivate = {
        supportsDryActivation = true;
        text = ''
          if [ "''${NIXOS_ACTION-}" = dry-activate ]; then
            ${activationRun "install --dry-run" (installCommand " --dry-run")}
          fi
        '';
      };
    }

    # The install units take "no bundle yet" as success; say it where the switch prints.
    (lib.mkIf settings.useSystemdActivation {
      system.activationScripts.auxSecretsNotice = ''
        if [ ! -e ${lib.escapeShellArg "${settings.storeDir}/store.json"} ]; then
          echo "aux-secrets: warning: no bundle has been delivered to this host yet, so no secrets are installed; run aux-secrets provision --host ${manifest.host}" >&2
        fi
      '';
    })

    # With activation scripts and tpm2.enable the unit installs at boot only (the TPM is
    # there only once udev has run, long after the boot's activation script); the script
    # installs at a switch.
    (lib.mkIf ((settings.useSystemdActivation || settings.tpm2.enable) && hasRegular) {
      systemd.services.aux-secrets-install = lib.recursiveUpdate earlyOneshot {
        description = "Install aux-secrets secrets into ${settings.runtimeDir}";
        wantedBy = [ "sysinit.target" ];
        requiredBy = lib.optional settings.useSystemdActivation "sysinit-reactivation.target";
        restartIfChanged = settings.useSystemdActivation;
        wants = tpm2Units;
        after = [
          "local-fs.target"
          "systemd-tmpfiles-setup.service"
        ]
        ++ userUnits
        ++ tpm2Units;
        # Before sysinit.target: every ordinary service starts with its secrets in place.
        before = [
          "sysinit.target"
          "sysinit-reactivation.target"
          "shutdown.target"
        ];
        unitConfig.RequiresMountsFor = [ settings.storeDir ];
        serviceConfig = {
          ExecStartPre = mountCommand settings.generationsDir;
          ExecStart = installCommand "";
        };
      };
    })

    (lib.mkIf (settings.useSystemdActivation && hasForUsers) {
      systemd.services.aux-secrets-install-for-users = lib.recursiveUpdate earlyOneshot {
        description = "Install aux-secrets secrets needed before users exist";
        wantedBy = [ "sysinit.target" ] ++ userUnits;
        before = userUnits ++ [
          "sysinit.target"
          "sysinit-reactivation.target"
          "shutdown.target"
        ];
        serviceConfig = {
          ExecStartPre = mountCommand usersGenerations;
          ExecStart = installCommand " --for-users";
        };
      };
    })

    # systemd-sysusers loads hashedPasswordFile with LoadCredential=, which fails the whole
    # unit (no users at all) while the file is missing: before the first delivery the
    # account is created locked ("!") instead.
    (lib.mkIf (sysusers && usersWithSecretHash != [ ]) {
      systemd.services.systemd-sysusers.serviceConfig.SetCredential = map (
        u: "passwd.hashed-password.${u.name}:!"
      ) (lib.filter (u: (u.initialHashedPassword or null) == null) usersWithSecretHash);
    })

    (lib.mkIf (!settings.useSystemdActivation) {
      system.activationScripts.auxSecrets = lib.mkIf hasRegular (
        lib.stringAfter [ "specialfs" "users" "groups" ] (
          if settings.tpm2.enable then
            ''
              # At boot aux-secrets-install.service installs, after tpm2.target.
              if [ -e /run/current-system ]; then
                ${mountCommand settings.generationsDir}
                ${activationRun "install" (installCommand activationListsArgs)}
              fi
            ''
          else
            ''
              ${mountCommand settings.generationsDir}
              ${activationRun "install" (installCommand activationListsArgs)}
            ''
        )
      );
      system.activationScripts.auxSecretsForUsers = lib.mkIf hasForUsers (
        lib.stringAfter [ "specialfs" ] ''
          ${mountCommand usersGenerations}
          ${activationRun "install --for-users" (installCommand " --for-users")}
        ''
      );
      system.activationScripts.users = lib.mkIf hasForUsers { deps = [ "auxSecretsForUsers" ]; };
    })

    (lib.mkIf (periods != [ ]) {
      systemd.services.aux-secrets-rotate = {
        description = "Install aux-secrets secrets at a rotation boundary";
        after = [ "aux-secrets-install.service" ];
        unitConfig.RequiresMountsFor = [ settings.storeDir ];
        serviceConfig = {
          Type = "oneshot";
          UMask = "0077";
          SuccessExitStatus = [ NO_BUNDLE ];
          ExecStartPre = mountCommand settings.generationsDir;
          ExecStart = installCommand "";
        };
      };
      systemd.timers.aux-secrets-rotate = {
        description = "Rotation boundaries of aux-secrets secrets";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = map (period: onCalendar.${period}) (lib.sort lib.lessThan periods);
          AccuracySec = "1s";
          Persistent = true;
        };
      };
    })
  ]
)
