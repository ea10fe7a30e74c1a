import io
import re

from dockyard.cli.buildview import StepView


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _view(height: int = 30, width: int = 60):
    out = io.StringIO()
    clock = Clock()
    return StepView(out, size=lambda: (height, width), clock=clock, tick=False), out, clock


def test_running_step_shows_its_last_lines_and_clock():
    view, _, clock = _view()
    view.feed("Step 1/3 : FROM busybox\n ---> 0123456789ab\n")
    view.feed("Step 2/3 : ENV A=1\n ---> Using cache\n ---> 123456789abc\n")
    view.feed("Step 3/3 : RUN make\n ---> Running in 23456789abcd\n")
    for i in range(10):
        view.feed(f"line {i}\n")
    view.feed("partial")
    clock.now += 2.5
    frame = view.frame()
    assert frame[0] == "[+] Building 2.5s (2/3)"
    assert frame[1].startswith(" => [1/3] FROM busybox") and frame[1].endswith("0.0s")
    assert frame[2] == " => CACHED [2/3] ENV A=1"
    assert frame[3].startswith(" => [3/3] RUN make") and frame[3].endswith("2.5s")
    assert frame[4:] == [f" => => line {i}" for i in range(5, 10)] + [" => => partial"]
    assert all(len(line) < 60 for line in frame)


def test_finished_frame_hides_output_and_prints_the_rest_after():
    view, out, clock = _view()
    view.feed("Step 1/2 : FROM busybox\n ---> 0123456789ab\nStep 2/2 : RUN x\nout\n")
    clock.now += 1
    view.feed("Removing intermediate container 23456789abcd\n ---> 3456789abcde\n")
    view.feed("Successfully built 3456789abcde\n")
    view.close()
    assert view.frame(final=True)[1:] == [
        " => [1/2] FROM busybox" + " " * 33 + "0.0s",
        " => [2/2] RUN x" + " " * 40 + "1.0s",
    ]
    text = out.getvalue()
    assert text.endswith("Successfully built 3456789abcde\n")
    # Each redraw moves up over the last frame and erases its lines.
    assert "\x1b[3A" in text and "\x1b[2K" in text


def test_failed_step_keeps_its_output():
    view, _, _ = _view()
    view.feed("Step 1/2 : FROM busybox\n ---> 0123456789ab\nStep 2/2 : RUN exit 3\nboom\n")
    view.fail()
    frame = view.frame(final=True)
    assert frame[2].startswith(" => ERROR [2/2] RUN exit 3")
    assert frame[3] == " => => boom"


def test_frame_fits_a_small_terminal():
    view, _, _ = _view(height=6, width=30)
    for n in range(1, 10):
        view.feed(f"Step {n}/9 : RUN a very long command line number {n}\n ---> Running in x\n")
    frame = view.frame()
    assert len(frame) <= 5
    assert all(len(line) < 30 for line in frame)
    assert re.search(r"\[9/9\]", frame[-1])


def test_pull_progress_lines_update_in_place():
    view, _, _ = _view()
    view.feed("Step 1/1 : FROM reg/x:v1\n")
    view.status({"status": "Pulling from x", "id": "v1"})
    view.status({"status": "Pulling fs layer", "id": "abc", "progressDetail": {}})
    view.status({"status": "Downloading", "id": "abc", "progress": "[=>  ] 1kB/2kB"})
    frame = view.frame()
    assert frame[2:] == [" => => v1: Pulling from x", " => => abc: Downloading [=>  ] 1kB/2kB"]
