"""Walking data folders through links: linked folders are entered, each real one once."""

import os

from napari_atlas_annotate.io.folder_walk import files_under, walk


def test_linked_folders_are_walked_once_and_links_back_up_do_not_loop(tmp_path):
    archive = tmp_path / "archive"
    (archive / "series").mkdir(parents=True)
    for name in ("1.dcm", "2.dcm"):
        (archive / "series" / name).write_bytes(b"x")
    data = tmp_path / "data"
    data.mkdir()
    (data / "study1").symlink_to(archive)  # the dataset links to the archive
    (data / "study1_again").symlink_to(archive)  # twice
    (archive / "up").symlink_to(data)  # and the archive links back up
    (data / "gone.dcm").symlink_to(tmp_path / "missing.dcm")  # a broken link: no file
    (data / "own.dcm").write_bytes(b"x")

    files = sorted(os.path.relpath(f, data) for f in files_under(data))
    assert files == ["own.dcm", "study1/series/1.dcm", "study1/series/2.dcm"]
    roots = [os.path.relpath(root, data) for root, _, _ in walk(data)]
    assert len(roots) == len({os.path.realpath(os.path.join(data, r)) for r in roots}) == 3


def test_pruning_works_as_with_os_walk(tmp_path):
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a").write_bytes(b"")
    (tmp_path / "b").write_bytes(b"")
    found = []
    for _root, dirs, files in walk(tmp_path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += files
    assert found == ["b"]
