"""docker's tabwriter layout; expected strings captured from docker 28.2.2 (fake daemon)."""

from dockyard.cli.table import render_table, tabwrite


def test_docker_images_default_table() -> None:
    rows = [
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        ["alpine", "latest", "4f2b2ae1c5e3", "3 years ago", "1e+03MB"],
        ["verylongrepositoryname/thing", "v1.2.3", "111111111111", "6 years ago", "4.26MB"],
    ]
    assert render_table(rows) == (
        "REPOSITORY                     TAG       IMAGE ID       CREATED       SIZE\n"
        "alpine                         latest    4f2b2ae1c5e3   3 years ago   1e+03MB\n"
        "verylongrepositoryname/thing   v1.2.3    111111111111   6 years ago   4.26MB\n"
    )


def test_ps_header_minwidth() -> None:
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert render_table([header]) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_single_column_is_not_padded() -> None:
    assert tabwrite("REPOSITORY\nalpine\n") == "REPOSITORY\nalpine\n"


def test_trailing_tab_pads_last_cell() -> None:
    # `table {{.ID}}\t`: the cell is tab-terminated, so it is a column and gets padded.
    assert tabwrite("IMAGE ID\t\n4f2b2ae1c5e3\t\n") == "IMAGE ID       \n4f2b2ae1c5e3   \n"


def test_empty_column() -> None:
    assert tabwrite("IMAGE ID\t\tTAG\n4f2b2ae1c5e3\t\tlatest\n") == (
        "IMAGE ID                 TAG\n4f2b2ae1c5e3             latest\n"
    )


def test_column_blocks_are_independent() -> None:
    # A line without tabs ends every column block; widths restart after it.
    text = "a\tb\nlong-cell-here\tc\nbreak\nx\ty\n"
    assert tabwrite(text) == "a                b\nlong-cell-here   c\nbreak\nx         y\n"


def test_nested_blocks() -> None:
    # Captured: `table {{.Size}}\t{{.Repository}}\n{{.ID}}\tx`
    text = (
        "SIZE\tREPOSITORY\nIMAGE ID\tx\n1e+03MB\talpine\n4f2b2ae1c5e3\tx\n"
        "4.26MB\tverylongrepositoryname/thing\n111111111111\tx\n"
    )
    assert tabwrite(text) == (
        "SIZE           REPOSITORY\n"
        "IMAGE ID       x\n"
        "1e+03MB        alpine\n"
        "4f2b2ae1c5e3   x\n"
        "4.26MB         verylongrepositoryname/thing\n"
        "111111111111   x\n"
    )


def test_no_final_newline_keeps_partial_line() -> None:
    assert tabwrite("a\tb") == "a         b"


def test_widths_count_runes() -> None:
    assert tabwrite("ñandú\tx\n") == "ñandú     x\n"
