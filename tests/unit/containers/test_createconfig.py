"""The create body merged over the image's config (moby's merge rules)."""

from dockyard.containers.createconfig import merge

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["serve"], "Env": ["PATH=/bin", "A=1"]}


def test_an_empty_entrypoint_resets_the_images_and_keeps_the_cmd():
    config = merge({"Image": "x", "Entrypoint": [""], "Cmd": ["echo", "hi"]}, IMAGE)
    assert config["Entrypoint"] is None and config["Cmd"] == ["echo", "hi"]


def test_an_empty_entrypoint_without_cmd_takes_no_cmd_from_the_image():
    config = merge({"Image": "x", "Entrypoint": [""]}, IMAGE)
    assert config["Entrypoint"] is None and config["Cmd"] is None


def test_no_entrypoint_takes_the_images_and_its_cmd():
    config = merge({"Image": "x"}, IMAGE)
    assert config["Entrypoint"] == ["/entry"] and config["Cmd"] == ["serve"]


def test_a_cmd_alone_keeps_the_images_entrypoint():
    config = merge({"Image": "x", "Cmd": ["other"]}, IMAGE)
    assert config["Entrypoint"] == ["/entry"] and config["Cmd"] == ["other"]


def test_env_overrides_by_key():
    config = merge({"Image": "x", "Env": ["A=2"]}, IMAGE)
    assert config["Env"] == ["PATH=/bin", "A=2"]
