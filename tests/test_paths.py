"""dropscribe.beneath: paths below a root opened without following links, with openat2
and with the per-component walk that stands in where the kernel lacks it."""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePath

import pytest

from dropscribe import beneath


@pytest.fixture(params=["openat2", "walk"])
def way(request, monkeypatch) -> str:
    """Each test runs with openat2 and again with the walk (openat2 made unavailable)."""
    if request.param == "walk":

        def unavailable(*_args: object) -> int:
            raise beneath.Unavailable

        monkeypatch.setattr(beneath, "_openat2", unavailable)
    else:
        try:
            fd = beneath._openat2(os.open("/", os.O_RDONLY), ".", os.O_RDONLY, 0)
        except beneath.Unavailable:
            pytest.skip("openat2 is not available on this kernel")
        os.close(fd)
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/a/b/file.txt, root/out -> a folder outside, root/a/link.txt -> a file outside."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file.txt").write_text("inside")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "out").symlink_to(outside)
    (root / "a" / "link.txt").symlink_to(outside / "secret.txt")
    return root


def rooted(path: Path) -> int:
    return beneath.open_root(path)


def test_a_file_below_the_root_is_read(tree, way):
    """A regular file on a path of real folders is read, whichever way it is opened."""
    root = rooted(tree)
    assert beneath.read_file(root, "a/b/file.txt", 100) == b"inside"


@pytest.mark.parametrize(
    ("rel", "opening"),
    [
        ("out/secret.txt", lambda root, rel: beneath.read_file(root, rel, 100)),
        ("a/link.txt", lambda root, rel: beneath.read_file(root, rel, 100)),
        ("out", beneath.open_dir),
    ],
)
def test_a_link_anywhere_on_the_way_is_refused_with_eloop(tree, way, rel, opening):
    """A link as a folder on the way or as the last name: ELOOP, nothing read."""
    root = rooted(tree)
    with pytest.raises(OSError) as caught:
        opening(root, rel)
    assert caught.value.errno == errno.ELOOP


@pytest.mark.parametrize("rel", ["../outside/secret.txt", "a/../../outside", "/etc/passwd"])
def test_dot_dot_and_absolute_paths_are_refused(tree, way, rel):
    """'..' and an absolute path could leave the root: refused before any lookup."""
    with pytest.raises(ValueError, match=r"refused|absolute"):
        beneath.open_at(rooted(tree), rel, os.O_RDONLY)


def test_make_dirs_never_makes_a_folder_through_a_link(tree, way, tmp_path):
    """mkdir -p of out/new/deeper: refused at the link; nothing made outside."""
    root = rooted(tree)
    with pytest.raises(OSError) as caught:
        beneath.make_dirs(root, "out/new/deeper")
    assert caught.value.errno == errno.ELOOP
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]
    fd = beneath.make_dirs(root, "a/new/deeper")
    os.close(fd)
    assert (tree / "a" / "new" / "deeper").is_dir()


def test_a_fifo_is_refused_without_blocking_and_a_large_file_by_its_size(tree, way):
    """A FIFO is not a regular file (and opening it does not wait for a writer); a file
    larger than the cap is refused before a byte is read."""
    os.mkfifo(tree / "a" / "pipe")
    (tree / "a" / "big").write_bytes(b"x" * 101)
    root = rooted(tree)
    with pytest.raises(OSError) as fifo:
        beneath.read_file(root, "a/pipe", 100)
    assert fifo.value.errno == errno.EINVAL
    with pytest.raises(OSError) as big:
        beneath.read_file(root, "a/big", 100)
    assert big.value.errno == errno.EFBIG


def test_walk_lists_files_and_never_enters_links(tree, way):
    """The walk gives each real folder's regular files and names the links it did not
    follow; nothing outside is listed."""
    seen = {rel: (files, others) for rel, _fd, files, others in beneath.walk(rooted(tree))}
    assert seen == {
        PurePath(): ([], ["out"]),
        PurePath("a"): ([], ["link.txt"]),
        PurePath("a/b"): (["file.txt"], []),
    }


def test_rename_takes_one_name_in_each_folder(tree, way):
    """renameat between two folder descriptors; a path for a name is refused."""
    root = rooted(tree)
    src, dst = beneath.open_dir(root, "a/b"), beneath.open_dir(root, "a")
    beneath.rename(src, "file.txt", dst, "moved.txt")
    assert (tree / "a" / "moved.txt").read_text() == "inside"
    with pytest.raises(ValueError, match="one file name"):
        beneath.rename(dst, "moved.txt", src, "b/x")
