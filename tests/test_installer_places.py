"""Root never acts through a place a service user controls; one bad place refuses one item.

A real unprivileged account (``setpriv --reuid/--regid``) races the installer: it swaps
the directory of its own custom path for a symlink to a root-only directory, in a loop,
while root installs again and again. Nothing may ever appear in the root-only directory,
and every other secret is installed every time.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aux_secrets.adapters.installer import FileToWrite, Tree, install_tree
from aux_secrets.adapters.installer.safepath import UnsafePlace, walk
from aux_secrets.errors import ConflictError

TREE = Tree("/run/aux-secrets", "/run/aux-secrets.d", keep=1, group="root")

SWAPPER = r"""
import os, sys, time
app, victim, stop = sys.argv[1], sys.argv[2], sys.argv[3]
real = app + ".real"
swaps = 0

def aside():
    # The installer saw the name free and created the directory itself: move it away.
    os.rename(app, "%s.made%d" % (app, swaps))

while not os.path.exists(stop):
    os.rename(app, real)
    try:
        os.symlink(victim, app)
    except FileExistsError:
        aside()
    else:
        time.sleep(0.0005)
        os.unlink(app)
    try:
        os.rename(real, app)
    except OSError:  # the installer made the name (and a child) again in between
        aside()
        os.rename(real, app)
    swaps += 1
print(swaps)
"""

PLANTER = r"""
import os, sys
path = sys.argv[1]
if os.path.islink(path):
    os.unlink(path)
with open(path, "w") as out:
    out.write("mine")
"""


@pytest.fixture
def user() -> Iterator[tuple[int, int]]:
    name = "auxp" + uuid.uuid4().hex[:8]
    subprocess.run(["groupadd", name], check=True)
    subprocess.run(["useradd", "-M", "-N", "-g", name, "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name).pw_uid, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


@pytest.fixture
def base() -> Iterator[Path]:
    """A root-owned 0755 directory the unprivileged user can traverse (not tmp_path: 0700)."""
    path = Path(tempfile.mkdtemp(prefix="aux-places-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_user(uid: int, gid: int, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


def secret(name: str, content: bytes, path: str | None = None) -> FileToWrite:
    return FileToWrite(f"secret:{name}", path or f"/run/aux-secrets/{name}", content, 0, 0, 0o400)


def make_root(base: Path) -> Path:
    root = base / "root"
    root.mkdir()
    root.chmod(0o755)  # the suite's umask is 077
    return root


def service_dir(root: Path, uid: int, gid: int) -> Path:
    """/srv/app owned by the service user, in a /srv it owns too (so it can rename app)."""
    srv = root / "srv"
    (srv / "app").mkdir(parents=True)
    for d in (srv, srv / "app"):
        os.chown(d, uid, gid)
        d.chmod(0o755)
    return srv / "app"


def test_racing_user_never_redirects_root(base: Path, user: tuple[int, int]) -> None:
    uid, gid = user
    root = make_root(base)
    app = service_dir(root, uid, gid)
    victim = root / "victim"  # root-only: the user cannot write here
    victim.mkdir()
    victim.chmod(0o755)
    stop = base / "stop"
    swapper = subprocess.Popen(
        as_user(uid, gid, sys.executable, "-c", SWAPPER, str(app), str(victim), str(stop)),
        stdout=subprocess.PIPE,
    )
    refused = installed = 0
    try:
        for i in range(150):
            result = install_tree(
                TREE,
                [
                    secret("token", b"t%d" % i, path="/srv/app/sub/token"),
                    secret("db", b"d%d" % i),
                ],
                root=root,
            )
            # The other secret is installed every time, whatever the race does.
            assert (root / "run/aux-secrets/db").read_bytes() == b"d%d" % i
            refused += bool(result.refused)
            installed += not result.refused
            assert list(victim.iterdir()) == [], f"root wrote through the user's symlink ({i})"
    finally:
        stop.touch()
        out, _ = swapper.communicate(timeout=30)
    assert swapper.returncode == 0
    assert int(out) > 150  # the user really raced every install
    assert installed + refused == 150
    assert list(victim.iterdir()) == []


def test_planted_file_refuses_only_its_own_item_every_time(
    base: Path, user: tuple[int, int]
) -> None:
    uid, gid = user
    root = make_root(base)
    app = service_dir(root, uid, gid)
    files = [secret("token", b"t", path="/srv/app/token"), secret("db", b"d")]
    first = install_tree(TREE, files, root=root)
    assert first.refused == () and (app / "token").read_bytes() == b"t"
    # The service user puts a regular file where its symlink was.
    planted = subprocess.run(as_user(uid, gid, sys.executable, "-c", PLANTER, str(app / "token")))
    assert planted.returncode == 0
    for _ in range(2):  # every later boot: the same, never the whole install
        again = install_tree(TREE, [files[0], secret("db", b"d2")], root=root)
        assert [m.key for m in again.refused] == ["secret:token"]
        assert "not a symlink" in again.refused[0].reason
        assert (root / "run/aux-secrets/db").read_bytes() == b"d2"
        assert (app / "token").read_bytes() == b"mine"


def test_symlinked_parent_of_a_custom_path_refuses_that_item(
    base: Path, user: tuple[int, int]
) -> None:
    uid, gid = user
    root = make_root(base)
    app = service_dir(root, uid, gid)
    victim = root / "victim"
    victim.mkdir()
    app.rmdir()
    subprocess.run(as_user(uid, gid, "ln", "-s", str(victim), str(app)), check=True)
    result = install_tree(
        TREE, [secret("token", b"t", path="/srv/app/token"), secret("db", b"d")], root=root
    )
    assert [m.key for m in result.refused] == ["secret:token"]
    assert "symlink" in result.refused[0].reason
    assert list(victim.iterdir()) == []
    assert (root / "run/aux-secrets/db").read_bytes() == b"d"


@pytest.mark.parametrize("owned", ["run", "run/aux-secrets.d"])
def test_tree_below_a_user_writable_directory_is_refused(
    base: Path, user: tuple[int, int], owned: str
) -> None:
    uid, gid = user
    root = base / "root"
    (root / owned).mkdir(parents=True)
    os.chown(root / owned, uid, gid)
    with pytest.raises(ConflictError, match=f"{root / owned} is owned by uid {uid}"):
        install_tree(TREE, [secret("db", b"d")], root=root)
    assert not (root / "run/aux-secrets").exists()


def test_group_writable_parent_is_refused_sticky_is_allowed(base: Path) -> None:
    root = base / "root"
    (root / "run").mkdir(parents=True)
    (root / "run").chmod(0o775)
    with pytest.raises(ConflictError, match="writable by its group or by others"):
        install_tree(TREE, [secret("db", b"d")], root=root)
    (root / "run").chmod(0o1777)  # like /tmp: others cannot rename or remove our entries
    install_tree(TREE, [secret("db", b"d")], root=root)
    assert (root / "run/aux-secrets/db").read_bytes() == b"d"


def test_walk_refuses_symlink_components_and_creates_through_descriptors(base: Path) -> None:
    (base / "real").mkdir()
    os.symlink(base / "real", base / "link")
    with pytest.raises(UnsafePlace, match="link is a symlink"):
        walk(base, "/link/x", create=True)
    assert not (base / "real/x").exists()
    os.umask(0o077)
    os.close(walk(base, "/a/b/c", create=True))
    assert oct((base / "a/b/c").stat().st_mode & 0o777) == "0o755"
    with pytest.raises(FileNotFoundError):
        walk(base, "/a/missing")
