"""engine.registry and engine.plugins: registering node packs and surviving broken ones."""

import sys
import textwrap
import types
from pathlib import Path

import pytest

import enginetest_nodes as tn
from engine.plugins import ENTRY_POINT_GROUP, load_builtin_packages, load_entry_points, load_plugin_directories, plugin_entries
from engine.registry import LoadError, Registry
from engine.runtime import Runtime, Settings

V1_SOURCE = '''
class {cls}:
    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"value": ("INT", {{"default": {default}}})}}}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "plugin"
    def run(self, value):
        return (value + {default},)
'''


def v1_plugin(name: str, default: int = 0, extra: str = "", cls: str = "PluginNode") -> str:
    return V1_SOURCE.format(cls=cls, default=default) + f"\nNODE_CLASS_MAPPINGS = {{{name!r}: {cls}}}\n" + textwrap.dedent(extra)


@pytest.fixture
def clean_modules():
    """Forget the modules a test imported (plugins are imported as custom_nodes.<name>)."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ---- registry ---------------------------------------------------------------------------------


def test_builtin_names_are_never_overridden():
    registry = tn.make_registry([tn.Const])
    module = types.ModuleType("plugin")
    module.NODE_CLASS_MAPPINGS = {"Const": tn.V1Const, "Fresh": tn.V1Const}
    assert registry.add_module(module, source="plugin") == ["Fresh"]
    assert registry.get("Const") is tn.Const.definition
    assert registry.errors == [LoadError("plugin", "node 'Const' clashes with a built-in node; kept the first", node="Const")]


def test_plugin_vs_plugin_clash_keeps_the_first():
    registry = Registry()
    first, second = types.ModuleType("first"), types.ModuleType("second")
    first.NODE_CLASS_MAPPINGS = {"Shared": tn.V1Const}
    second.NODE_CLASS_MAPPINGS = {"Shared": tn.V1Show}
    assert registry.add_module(first, source="first") == ["Shared"]
    assert registry.add_module(second, source="second") == []
    assert registry.get("Shared").cls is tn.V1Const
    assert registry.get("Shared").source == "first"
    [err] = registry.errors
    assert (err.source, err.node) == ("second", "Shared")
    assert err.message == "node 'Shared' clashes with a node from first; kept the first"


def test_record_keeps_each_error_once():
    registry = Registry()
    error = LoadError("x", "broken")
    registry.record(error)
    registry.record(LoadError("x", "broken"))
    assert registry.errors == [error]


def test_module_exporting_nothing_is_recorded():
    registry = Registry()
    assert registry.add_module(types.ModuleType("nothing"), source="nothing") == []
    assert registry.errors == [LoadError("nothing", "module exports no nodes (NODES or NODE_CLASS_MAPPINGS)")]


def test_registry_container_and_object_info(folders):
    registry = tn.make_registry([tn.Const, tn.Show], {"V1Const": tn.V1Const}, display={"V1Const": "V1 Constant"})
    assert len(registry) == 3 and list(registry) == ["Const", "Show", "V1Const"]
    assert "Const" in registry and "Nope" not in registry and registry.get("Nope") is None
    info = registry.object_info(folders)
    assert set(info) == {"Const", "Show", "V1Const"}
    assert info["Const"]["display_name"] == "Constant"
    assert info["V1Const"]["display_name"] == "V1 Constant"
    assert info["Const"]["input"]["required"]["value"] == ["INT", {"default": 0, "min": -1000, "max": 1000}]


def test_failing_spec_is_skipped_and_recorded(folders):
    from engine.native import Input, Node, node

    def broken(folders):
        raise OSError("cannot list")

    @node(outputs=["STRING"])
    class Listing(Node):
        name: str = Input(options=broken)

        def execute(self, ctx):
            return self.name

    registry = tn.make_registry([tn.Const, Listing])
    specs = registry.specs(folders)
    assert list(specs) == ["Const"]
    [err] = registry.errors
    assert err.node == "Listing" and "spec failed: cannot list" in err.message and "OSError" in err.traceback


# ---- plugin folders ---------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path):
    root = tmp_path / "plugins"
    write(root / "single.py", v1_plugin("SingleNode", 1) + 'WEB_DIRECTORY = "./js"\n')
    (root / "js").mkdir()
    write(root / "pkg" / "__init__.py", "from .impl import NODES\nfrom . import impl\n")
    write(root / "pkg" / "impl.py", """
        from engine import Input, Node, Output, node

        @node(display_name="Package Node", outputs=[Output("INT")])
        class PackageNode(Node):
            value: int = Input(0)

            def execute(self, ctx):
                return self.value * 2

        NODES = [PackageNode]
    """)
    write(root / "broken_import.py", "import sdflow_module_that_does_not_exist\n")
    write(root / "exits.py", "import sys\nsys.exit(3)\n")
    write(root / "raises.py", "raise RuntimeError('plugin exploded')\n")
    write(root / "empty.py", "X = 1\n")
    write(root / "clash_a.py", v1_plugin("Clashing", 1))
    write(root / "clash_b.py", v1_plugin("Clashing", 2))
    write(root / "builtin_clash.py", v1_plugin("Const", 3))
    write(root / "off.py.disabled", v1_plugin("DisabledFile"))
    write(root / "offpkg.disabled" / "__init__.py", v1_plugin("DisabledPackage"))
    write(root / "_private.py", v1_plugin("Private"))
    write(root / ".hidden.py", v1_plugin("Hidden"))
    write(root / "__pycache__" / "__init__.py", v1_plugin("Cache"))
    write(root / "notes.txt", "not a plugin")
    (root / "not_a_package").mkdir()
    return root


def test_plugin_entries_skip_disabled_hidden_and_non_python(plugin_dir):
    assert [p.name for p in plugin_entries(plugin_dir)] == [
        "broken_import.py", "builtin_clash.py", "clash_a.py", "clash_b.py", "empty.py", "exits.py", "pkg",
        "raises.py", "single.py",
    ]
    assert plugin_entries(plugin_dir / "missing") == []


def test_plugin_folder_loading_survives_every_failure(plugin_dir, clean_modules, folders):
    registry = tn.make_registry([tn.Const])
    load_plugin_directories(registry, [plugin_dir, plugin_dir.parent / "missing"])

    assert set(registry) == {"Const", "Clashing", "PackageNode", "SingleNode"}
    assert registry.get("Clashing").source == "custom_nodes.clash_a"
    # a native node's source is the module that defines it
    assert registry.get("PackageNode").source == "custom_nodes.pkg.impl"
    assert registry.get("SingleNode").source == "custom_nodes.single"
    assert registry.get("Const") is tn.Const.definition

    errors = {e.source: e for e in registry.errors}
    assert set(errors) == {
        str(plugin_dir / "broken_import.py"), str(plugin_dir / "exits.py"), str(plugin_dir / "raises.py"),
        "custom_nodes.empty", "custom_nodes.clash_b", "custom_nodes.builtin_clash",
    }
    broken = errors[str(plugin_dir / "broken_import.py")]
    assert broken.message.startswith("import failed: ModuleNotFoundError(") and "sdflow_module_that_does_not_exist" in broken.message
    assert "Traceback" in broken.traceback
    exits = errors[str(plugin_dir / "exits.py")]
    assert exits.message == "import failed: SystemExit(3)" and "Traceback" in exits.traceback
    raises = errors[str(plugin_dir / "raises.py")]
    assert "plugin exploded" in raises.message and "RuntimeError" in raises.traceback
    assert errors["custom_nodes.empty"].message == "module exports no nodes (NODES or NODE_CLASS_MAPPINGS)"
    assert errors["custom_nodes.clash_b"].node == "Clashing"
    assert "clashes with a node from custom_nodes.clash_a" in errors["custom_nodes.clash_b"].message
    assert "clashes with a built-in node" in errors["custom_nodes.builtin_clash"].message

    # failed imports leave nothing behind; good ones stay importable (relative imports included)
    assert "custom_nodes.broken_import" not in sys.modules and "custom_nodes.exits" not in sys.modules
    assert "custom_nodes.pkg.impl" in sys.modules
    assert registry.web_directories == {"single": (plugin_dir / "js").resolve()}

    # the loaded nodes work
    info = registry.object_info(folders)
    assert info["PackageNode"]["display_name"] == "Package Node"
    assert info["SingleNode"]["input"]["required"]["value"] == ["INT", {"default": 1}]


def test_web_directory_of_a_pack_without_nodes_is_kept(tmp_path, clean_modules):
    root = tmp_path / "plugins"
    write(root / "jsonly" / "__init__.py", 'WEB_DIRECTORY = "web"\n')
    registry = Registry()
    load_plugin_directories(registry, [root])
    assert registry.web_directories == {"jsonly": (root / "jsonly" / "web").resolve()}
    assert [e.source for e in registry.errors] == ["custom_nodes.jsonly"]


def test_same_plugin_name_in_two_folders(tmp_path, clean_modules):
    write(tmp_path / "one" / "same.py", v1_plugin("FromOne", 1))
    write(tmp_path / "two" / "same.py", v1_plugin("FromTwo", 2))
    registry = Registry()
    load_plugin_directories(registry, [tmp_path / "one", tmp_path / "two"])
    assert registry.errors == []
    assert registry.get("FromOne").source == "custom_nodes.same"
    assert registry.get("FromTwo").source == "custom_nodes.same_2"


def test_load_builtin_packages(monkeypatch):
    module = types.ModuleType("sdflow_fake_builtins")
    module.NODES = [tn.Const]
    monkeypatch.setitem(sys.modules, "sdflow_fake_builtins", module)
    registry = Registry()
    load_builtin_packages(registry, ["sdflow_fake_builtins", "sdflow_missing_builtins"])
    assert list(registry) == ["Const"]
    [err] = registry.errors
    assert err.source == "sdflow_missing_builtins" and err.message.startswith("import failed:") and err.traceback
    # registered as built-in: a plugin cannot take the name
    plugin = types.ModuleType("plugin")
    plugin.NODE_CLASS_MAPPINGS = {"Const": tn.V1Const}
    assert registry.add_module(plugin, source="plugin") == []
    assert "clashes with a built-in node" in registry.errors[-1].message


def test_runtime_loads_plugins_from_base_and_extra_folders(tmp_path, clean_modules, monkeypatch):
    monkeypatch.setattr("engine.runtime.load_entry_points", lambda registry: None)
    write(tmp_path / "base" / "custom_nodes" / "in_base.py", v1_plugin("InBase", 1))
    write(tmp_path / "extra" / "in_extra.py", v1_plugin("InExtra", 2))
    runtime = Runtime(Settings(base_dir=tmp_path / "base", plugin_dirs=[tmp_path / "extra"], builtin_packages=()))
    assert sorted(runtime.registry) == ["InBase", "InExtra"]
    assert runtime.folders.output == (tmp_path / "base" / "output").resolve()
    off = Runtime(Settings(base_dir=tmp_path / "base", load_plugins=False, builtin_packages=()))
    assert len(off.registry) == 0


# ---- entry points -------------------------------------------------------------------------------


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch, clean_modules):
    site = tmp_path / "site"
    info = site / "fake_pack-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: fake-pack\nVersion: 0.1\n")
    write(info / "entry_points.txt", f"""
        [{ENTRY_POINT_GROUP}]
        fake = fake_pack_nodes
        factory = fake_pack_nodes:make_module
        broken = fake_pack_missing_module
        [console_scripts]
        unrelated = fake_pack_nodes:main
    """)
    write(site / "fake_pack_nodes.py", v1_plugin("FakePackNode", 5, extra="""
        import types as _types

        def make_module():
            module = _types.ModuleType("made")
            module.NODE_CLASS_MAPPINGS = {"FactoryNode": PluginNode}
            return module
    """))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_points_register_modules_and_factories(fake_distribution):
    registry = Registry()
    load_entry_points(registry)
    assert {"FakePackNode", "FactoryNode"} <= set(registry), registry.errors
    assert registry.get("FakePackNode").source == "entry point fake (fake_pack_nodes)"
    assert registry.get("FactoryNode").source == "entry point factory (fake_pack_nodes:make_module)"
    ours = [e for e in registry.errors if "fake_pack" in e.source]
    assert len(ours) == 1
    assert ours[0].source == "entry point broken (fake_pack_missing_module)"
    assert ours[0].message.startswith("import failed: ModuleNotFoundError(") and "Traceback" in ours[0].traceback


def test_entry_points_of_another_group_are_ignored(fake_distribution):
    registry = Registry()
    load_entry_points(registry, group="sdflow.other")
    assert "FakePackNode" not in registry
