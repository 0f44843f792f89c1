"""engine.paths and engine.folders: the one resolver for user-supplied file names."""

import os
from pathlib import Path

import pytest

from engine.folders import Folders, split_annotation
from engine.paths import UnsafePathError, resolve_inside, write_atomically


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "x.png").write_bytes(b"png")
    return root


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/x.png", "c:x.png", "//server/share"])
def test_absolute_names_are_refused(root, name):
    with pytest.raises(UnsafePathError, match="must be relative"):
        resolve_inside(root, name)


@pytest.mark.parametrize("name", ["\\windows\\system32", "C:\\x.png", "sub\\x.png", "..\\x.png"])
def test_windows_separators_are_refused(root, name):
    with pytest.raises(UnsafePathError, match="backslash"):
        resolve_inside(root, name)


@pytest.mark.parametrize("name", ["..", "../x.png", "sub/../../x.png", "sub/deeper/../../../etc", "sub/deeper/../deeper/x.png", "sub/.."])
def test_parent_components_are_refused_even_when_they_stay_inside(root, name):
    with pytest.raises(UnsafePathError, match="goes up a folder"):
        resolve_inside(root, name)


@pytest.mark.parametrize("name", ["%2e%2e/x.png", "%2E%2E%2Fetc", "..%2fx.png", "sub%2f..%2f..%2fx", "%252e%252e/x.png", "%25252e%25252e%25252f",
                                  "%2fetc%2fpasswd", "sub%5cx.png", "x%00.png", "sub%2fdeeper%2fx.png"])
def test_percent_encoded_traversal_is_refused(root, name):
    with pytest.raises(UnsafePathError):
        resolve_inside(root, name)


@pytest.mark.parametrize("name", ["v1..final.png", ".hidden.png", "...", "..png", "a.b.c.png", "sub/deeper/x.png", "100%.png", "50%off.png"])
def test_names_with_dots_or_percent_signs_are_fine(root, name):
    assert resolve_inside(root, name) == Path(os.path.realpath(root / name))


def test_nul_byte_is_refused(root):
    with pytest.raises(UnsafePathError, match="NUL"):
        resolve_inside(root, "x.png\x00.txt")


def test_symlink_pointing_outside_is_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "filelink.txt").symlink_to(outside / "secret.txt")
    for name in ("link/secret.txt", "link", "filelink.txt"):
        with pytest.raises(UnsafePathError):
            resolve_inside(root, name)


def test_symlink_inside_the_root_is_fine(root):
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)
    assert resolve_inside(root, "alias/deeper/x.png") == (root / "sub" / "deeper" / "x.png").resolve()


@pytest.mark.parametrize("name", ["sub/deeper/x.png", "sub/./deeper/x.png", "new/not/yet.png", "a b.png"])
def test_nested_names_resolve_inside(root, name):
    result = resolve_inside(root, name)
    assert result == Path(os.path.realpath(root / name))
    assert root.resolve() in result.parents


def test_root_given_as_string_and_pathlike_name(root):
    assert resolve_inside(str(root), Path("sub") / "deeper" / "x.png") == (root / "sub" / "deeper" / "x.png").resolve()


def test_root_that_is_itself_a_symlink(tmp_path, root):
    link_root = tmp_path / "rootlink"
    link_root.symlink_to(root, target_is_directory=True)
    assert resolve_inside(link_root, "sub/deeper/x.png") == (root / "sub" / "deeper" / "x.png").resolve()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("x.png [output]", ("x.png", "output")),
        ("x.png [temp]", ("x.png", "temp")),
        ("x.png [input]", ("x.png", "input")),
        ("sub/x y.png [output]", ("sub/x y.png", "output")),
        ("x.png", ("x.png", "input")),
        ("x.png [models]", ("x.png [models]", "input")),
        ("x.png[output]", ("x.png[output]", "input")),
    ],
)
def test_split_annotation(name, expected):
    assert split_annotation(name) == expected


def test_split_annotation_default_kind():
    assert split_annotation("x.png", "output") == ("x.png", "output")


def test_folders_defaults_and_overrides(tmp_path):
    folders = Folders(tmp_path)
    assert folders.base == tmp_path.resolve()
    assert (folders.input, folders.output, folders.temp) == tuple((tmp_path / k).resolve() for k in ("input", "output", "temp"))
    assert not folders.input.exists()  # created on demand only
    assert folders.root("input") == (tmp_path / "input").resolve() and folders.input.is_dir()
    custom = Folders(tmp_path, output=tmp_path / "elsewhere")
    assert custom.output == (tmp_path / "elsewhere").resolve()
    with pytest.raises(ValueError, match="unknown folder type"):
        folders.root("models")


def test_folders_resolve_annotated(tmp_path):
    folders = Folders(tmp_path)
    assert folders.resolve_annotated("x.png [output]") == (tmp_path / "output" / "x.png").resolve()
    assert folders.resolve_annotated("sub/x.png") == (tmp_path / "input" / "sub" / "x.png").resolve()
    assert folders.resolve_annotated("x.png", default_kind="temp") == (tmp_path / "temp" / "x.png").resolve()
    with pytest.raises(UnsafePathError):
        folders.resolve_annotated("../input/x.png [output]")
    with pytest.raises(UnsafePathError):
        folders.resolve("output", "/tmp/x.png")


def test_list_images(tmp_path):
    folders = Folders(tmp_path)
    assert folders.list_images() == []
    root = folders.root("input")
    for name in ("b.PNG", "a.jpg", "notes.txt", "c.webp"):
        (root / name).write_bytes(b"")
    (root / "dir.png").mkdir()
    assert folders.list_images() == ["a.jpg", "b.PNG", "c.webp"]


def test_write_atomically(tmp_path):
    target = tmp_path / "out.bin"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
