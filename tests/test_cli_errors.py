"""The command line's one error boundary, and the commands on a checkpoint that
`sigcnn train` wrote: every mistake ends in one line naming the flag, exit
status 2, no traceback (``--debug`` shows it)."""

import contextlib
import io

import pytest

from sigcnn import cli
from sigcnn.cli import error_message


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    return lines[-1]


# -- the boundary ----------------------------------------------------------------


@pytest.mark.parametrize("exc,line", [
    (ValueError("`n_images` must be at most 600; got 5000."),
     "sigcnn verify: error: argument --n-images: must be at most 600; got 5000."),
    (ValueError("`work_dir`: 'x' holds the chunks of a different run."),
     "sigcnn verify: error: argument --out: 'x' holds the chunks of a different "
     "run."),
    (TypeError("`key` must be a JAX PRNG key; got 0."),
     "sigcnn verify: error: `key` must be a JAX PRNG key; got 0."),
    (FileNotFoundError(2, "No such file or directory", "/nowhere/x.npz"),
     "sigcnn verify: error: No such file or directory: '/nowhere/x.npz'"),
])
def test_library_errors_end_in_one_line_naming_the_flag(monkeypatch, exc, line):
    from sigcnn import verify

    def boom(**kwargs):
        raise exc

    monkeypatch.setattr(verify, "run_all", boom)
    # `verify` has no --n-images / --out: the names map through flag_names.
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices["verify"]  # noqa: SLF001
    sub.flag_names = {"n_images": "--n-images", "work_dir": "--out"}
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    code, out, err = _run(["verify"])
    assert code == 2
    assert err.strip() == line


def test_debug_shows_the_traceback(monkeypatch):
    from sigcnn import verify

    def boom(**kwargs):
        raise ValueError("`seed` is bad")

    monkeypatch.setattr(verify, "run_all", boom)
    with pytest.raises(ValueError, match="`seed` is bad"):
        _run(["verify", "--debug"])
    with pytest.raises(ValueError, match="`seed` is bad"):
        _run(["--debug", "verify"])


def test_a_defect_is_reported_as_internal_error_with_status_1(monkeypatch):
    from sigcnn import verify

    def boom(**kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(verify, "run_all", boom)
    code, _, err = _run(["verify"])
    assert code == 1
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        "sigcnn verify: internal error: RuntimeError: something inside broke",
        "sigcnn verify: run again with --debug for the traceback"]


def test_ctrl_c_keeps_finished_work_in_one_line(monkeypatch):
    from sigcnn import verify

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "run_all", interrupted)
    code, _, err = _run(["verify"])
    assert code == 130
    assert err.strip() == ("sigcnn verify: interrupted; finished work is kept, and "
                           "the same command resumes it.")


def test_error_message_names_flags_and_keeps_other_names():
    flags = {"out_dir": "--out", "n_images": "--n-images"}
    assert error_message(ValueError("`out_dir` is a file."), flags) == \
        "argument --out: is a file."
    assert error_message(ValueError("bad `n_images` and `stride`"), flags) == \
        "bad --n-images and `stride`"
    assert error_message(ValueError("first line\nsecond"), flags) == "first line"


def test_shift_test_refuses_more_images_than_the_folder(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    code, _, err = _run(["shift-test", "--torch", "torchvision.models:resnet18",
                         "--images", str(folder), "--n-images", "5",
                         "--out", str(tmp_path / "o")])
    assert code == 2
    assert _one_line(err) == (f"sigcnn shift-test: error: argument --n-images: must "
                              f"be at most the 3 images of --images "
                              f"{str(folder)!r}; got 5")


@pytest.mark.parametrize("argv,line", [
    (["spectra", "--downsample", "aps", "--out", "X"],
     "sigcnn spectra: error: argument --downsample: invalid choice: 'aps' "
     "(choose from "),
    (["spectra", "--checkpoint", "NOWHERE", "--out", "X"],
     "sigcnn spectra: error: argument --checkpoint: no such folder 'NOWHERE'"),
])
def test_spectra_argument_errors(argv, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv)
    assert code == 2
    assert _one_line(err).startswith(line)
    assert "aps" not in _one_line(err)[len(line):]     # not offered
    assert out == "" and list(tmp_path.iterdir()) == []   # nothing created


def test_spectra_help_explains_aps():
    code, out, _ = _run(["spectra", "--help"])
    assert code == 0
    assert "no undecimated response" in " ".join(out.split())


# -- progress ------------------------------------------------------------------------


def test_progress_is_plain_lines_off_a_terminal_and_bars_on_one():
    from sigcnn._progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    log = io.StringIO()
    with Progress(stream=log, every=1e9) as progress:
        for done in range(1, 5):
            progress("crop", done, 4)        # unfinished stages stay quiet
        progress("chunks reused", 2, 5)
        progress("chunks", 3, 5)
    lines = log.getvalue().splitlines()
    assert lines[0] == "  crop: 4/4 images"
    assert lines[1] == "  2/5 chunks reused from an earlier run"
    assert lines[2].startswith("  chunk 3/5 done (") and lines[2].endswith("s left)")
    assert len(lines) == 3

    tty = Tty()
    with Progress(stream=tty) as progress:
        assert progress.bars
        progress("crop", 2, 4)
        progress("crop", 4, 4)
    drawn = tty.getvalue()
    assert "crop" in drawn and "4/4" in drawn and "\x1b[" in drawn   # a live bar
