"""Loading and linting flow files: every mistake an editor can make is one `file:node: message` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flows.loader import NODE_TYPES, FlowLoadError, lint_flows, load_flows

MINIMAL_FLOW = """\
id: demo
title: Demo
languages: [es, qu]
review: {es: reviewed, qu: reviewed}
start: greeting
main: main
system:
  invalid: {es: "Opción no válida.", qu: "Manam kanchu."}
  no_input: {es: "No recibimos su respuesta.", qu: "Manam chaskirqaykuchu."}
  goodbye: {es: "Hasta pronto.", qu: "Tupananchikkama."}
  error: {es: "Hubo un problema.", qu: "Sasachakuy kapun."}
  after_article: {es: "Marque 1, 2 o 0.", qu: "Hukta, iskayta, ch'usaqta ñit'iy."}
  after_last_article: {es: "Marque 1 o 0.", qu: "Hukta, ch'usaqta ñit'iy."}
  no_number: {es: "Número oculto.", qu: "Pakasqa yupay."}
sms:
  help: {es: "Escriba MENU.", qu: "MENU qillqay."}
  opted_out: {es: "No le escribiremos más.", qu: "Manaña qillqamusqaykichu."}
  opted_in: {es: "Bienvenida otra vez.", qu: "Yapamanta allin hamusqayki."}
  more: {es: "Responda 0 para seguir", qu: "Qatinaykipaq 0 qillqay"}
  repeat: {es: "Repetir", qu: "Yapamanta"}
  next: {es: "Siguiente", qu: "Qatiq"}
  back: {es: "Volver", qu: "Kutiy"}
  main_menu: {es: "Menú principal", qu: "Qallariy akllana"}
  change_language: {es: "Idioma", qu: "Simi"}
  skip: {es: "Saltar", qu: "Saqiy"}
  news_subscribed: {es: "Recibirá noticias.", qu: "Willakuykunata chaskinki."}
nodes:
  greeting:
    type: message
    prompt: {es: "Hola.", qu: "Allinllachu."}
    next: language
  language:
    type: language_menu
    prompt: {es: "Para español, marque 1.", qu: "Runasimipaq, iskayta ñit'iy."}
    options: {"1": es, "2": qu}
    next: main
  main:
    type: menu
    prompt: {es: "Noticias, marque 1. Salir, marque 2.", qu: "Willakuy, hukta. Lluqsiy, iskayta."}
    options:
      "1": {next: news, label: {es: "Noticias", qu: "Willakuy"}}
      "2": {next: bye, label: {es: "Salir", qu: "Lluqsiy"}}
  news:
    type: article
    prompt: {es: "Una noticia.", qu: "Huk willakuy."}
    source: "Ley N.° 29785"
    back: main
  bye:
    type: end
    prompt: {es: "Adiós.", qu: "Ripuy."}
"""


def edit(text: str, old: str, new: str) -> str:
    """Replace a fragment that must occur exactly once, so a mutation never silently misses."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def write_flow(directory: Path, text: str = MINIMAL_FLOW, name: str = "demo") -> Path:
    """Write a flow file (the minimal valid bilingual flow by default) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(directory: Path) -> list[str]:
    """The problems `load_flows` raises, checked to be the same ones `lint_flows` reports."""
    with pytest.raises(FlowLoadError) as raised:
        load_flows(directory)
    assert lint_flows(directory)[0] == raised.value.problems
    return raised.value.problems


@pytest.fixture
def flows_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A flow folder; the working directory is its parent, so problems name `flows/<file>`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "flows"


def test_minimal_flow_is_valid(flows_dir: Path) -> None:
    """The base flow every other test mutates loads with no problems and no notes."""
    write_flow(flows_dir)
    assert list(load_flows(flows_dir)) == ["demo"]
    assert lint_flows(flows_dir) == ([], [])


def test_invalid_yaml(flows_dir: Path) -> None:
    """A YAML syntax error names the file and the line."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, 'options: {"1": es, "2": qu}', 'options: {"1": es, "2": qu'))
    # PyYAML notices the unclosed `{` on the next line, where it finds `next:`.
    assert problems(flows_dir) == ["flows/demo.yaml:(flow): expected ',' or '}', but got ':' at line 36"]


def test_not_a_mapping(flows_dir: Path) -> None:
    """A file that is a list, not a mapping, is refused."""
    write_flow(flows_dir, "- greeting\n- main\n")
    assert problems(flows_dir) == ["flows/demo.yaml:(flow): must be a YAML mapping"]


def test_duplicate_node_id(flows_dir: Path) -> None:
    """A node id used twice is refused, instead of the second silently replacing the first."""
    duplicate = '  news:\n    type: end\n    prompt: {es: "Fin.", qu: "Tukuy."}\n'
    write_flow(flows_dir, MINIMAL_FLOW + duplicate)
    assert problems(flows_dir) == ["flows/demo.yaml:(flow): duplicate id 'news' at line 51"]


def test_unknown_node_type(flows_dir: Path) -> None:
    """A misspelt node type names the node and the types that exist."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, "type: article", "type: articel"))
    [line] = problems(flows_dir)
    assert line.startswith("flows/demo.yaml:news: Input tag 'articel' found using 'type'")
    assert "does not match any of the expected tags: 'message', 'menu'" in line


def test_missing_required_field(flows_dir: Path) -> None:
    """An article without its source names the node and the field."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '    source: "Ley N.° 29785"\n', ""))
    assert problems(flows_dir) == ["flows/demo.yaml:news: Field required (source)"]


def test_bad_field_in_a_question_node(flows_dir: Path) -> None:
    """A misspelt field of a survey question is named without the node type pydantic adds to it."""
    question = (
        '  age:\n    type: question\n    prompt: {es: "¿Edad?", qu: "¿Hayk\'a watayuq?"}\n'
        "    numbr: {min: 0, max: 120}\n    next: main\n"
    )
    write_flow(flows_dir, MINIMAL_FLOW + question)
    assert problems(flows_dir) == ["flows/demo.yaml:age: Extra inputs are not permitted (numbr)"]


@pytest.mark.parametrize("node_type", sorted(NODE_TYPES))
def test_field_errors_of_every_node_type_are_clean(flows_dir: Path, node_type: str) -> None:
    """Every node type's field errors read `file:node: message (field)`, never `(<type>.field)`."""
    write_flow(flows_dir, MINIMAL_FLOW + f"  odd:\n    type: {node_type}\n    bogus: 1\n")
    lines = problems(flows_dir)
    assert "flows/demo.yaml:odd: Extra inputs are not permitted (bogus)" in lines
    assert all(line.startswith("flows/demo.yaml:odd: ") for line in lines)
    assert not [line for line in lines if f"({node_type}." in line or f"({node_type})" in line]


def test_node_types_come_from_the_node_union() -> None:
    """The tags stripped from error locations are exactly the node types a flow may use."""
    assert {"message", "menu", "question", "subscribe", "resume", "consent", "profile_check"} <= NODE_TYPES


def test_next_to_unknown_node(flows_dir: Path) -> None:
    """A `next` that leads nowhere names the node that holds it and the missing target."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, "next: language", "next: lenguage"))
    assert problems(flows_dir) == ["flows/demo.yaml:greeting: leads to unknown node 'lenguage'"]


def test_unreachable_node(flows_dir: Path) -> None:
    """A node no path leads to is reported."""
    orphan = '  orphan:\n    type: end\n    prompt: {es: "Fin.", qu: "Tukuy."}\n'
    write_flow(flows_dir, MINIMAL_FLOW + orphan)
    assert problems(flows_dir) == ["flows/demo.yaml:orphan: is unreachable from start"]


def test_missing_language_text(flows_dir: Path) -> None:
    """A prompt without text in a declared language is reported."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, ', qu: "Huk willakuy."', ""))
    assert problems(flows_dir) == ["flows/demo.yaml:news: prompt has no 'qu' text"]


def test_blank_language_text(flows_dir: Path) -> None:
    """Text that is only spaces counts as missing."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '"Huk willakuy."', '"  "'))
    assert problems(flows_dir) == ["flows/demo.yaml:news: prompt has no 'qu' text"]


def test_text_in_undeclared_language(flows_dir: Path) -> None:
    """Text in a language the flow does not declare is reported."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '"Huk willakuy."}', '"Huk willakuy.", en: "News."}'))
    assert problems(flows_dir) == ["flows/demo.yaml:news: prompt has text in undeclared language 'en'"]


def test_missing_system_prompt(flows_dir: Path) -> None:
    """Every system prompt the engine speaks must be defined."""
    line = """  after_last_article: {es: "Marque 1 o 0.", qu: "Hukta, ch'usaqta ñit'iy."}\n"""
    write_flow(flows_dir, edit(MINIMAL_FLOW, line, ""))
    assert problems(flows_dir) == ["flows/demo.yaml:(flow): system prompt 'after_last_article' is missing"]


def test_missing_sms_text(flows_dir: Path) -> None:
    """Every text the SMS channel needs (help, opt-out, paging...) must be defined."""
    write_flow(
        flows_dir,
        edit(MINIMAL_FLOW, '  more: {es: "Responda 0 para seguir", qu: "Qatinaykipaq 0 qillqay"}\n', ""),
    )
    assert problems(flows_dir) == ["flows/demo.yaml:(flow): sms text 'more' is missing"]


def test_menu_option_without_label(flows_dir: Path) -> None:
    """SMS lists a menu's options by label, so every option needs one."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, ', label: {es: "Salir", qu: "Lluqsiy"}', ""))
    assert problems(flows_dir) == [
        "flows/demo.yaml:main: key 2 needs a label (SMS menus list options by label)"
    ]


def test_node_sms_text_missing_a_language(flows_dir: Path) -> None:
    """A node's SMS text, like its prompt, needs every declared language."""
    write_flow(
        flows_dir, edit(MINIMAL_FLOW, "    back: main\n", '    sms: {es: "Noticia."}\n    back: main\n')
    )
    assert problems(flows_dir) == ["flows/demo.yaml:news: sms text has no 'qu' text"]


def test_menu_key_of_two_characters(flows_dir: Path) -> None:
    """A menu key must be one keypad key."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '"2": {next: bye,', '"12": {next: bye,'))
    assert problems(flows_dir) == [
        "flows/demo.yaml:main: menu key '12' is not a single keypad key (0-9, * or #)"
    ]


@pytest.mark.parametrize("key", ["0", "9", "*"])
def test_reserved_menu_key(flows_dir: Path, key: str) -> None:
    """The keys every menu already understands cannot be declared as options."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '"2": {next: bye,', f'"{key}": {{next: bye,'))
    assert problems(flows_dir) == [
        f"flows/demo.yaml:main: menu key '{key}' is reserved (0 repeats, 9 main menu, * language)"
    ]


def test_language_menu_chooses_undeclared_language(flows_dir: Path) -> None:
    """A language menu key must choose a language the flow declares."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '{"1": es, "2": qu}', '{"1": es, "2": qu, "3": en}'))
    assert problems(flows_dir) == ["flows/demo.yaml:language: key 3 chooses undeclared language 'en'"]


def test_language_menu_misses_a_language(flows_dir: Path) -> None:
    """Every declared language must be choosable."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '{"1": es, "2": qu}', '{"1": es}'))
    assert problems(flows_dir) == ["flows/demo.yaml:language: no key chooses qu"]


def test_message_loop(flows_dir: Path) -> None:
    """Messages that lead to each other would talk forever without waiting for a key."""
    loop = (
        "  loop_a:\n    type: message\n"
        '    prompt: {es: "A.", qu: "A."}\n    next: loop_b\n'
        "  loop_b:\n    type: message\n"
        '    prompt: {es: "B.", qu: "B."}\n    next: loop_a\n'
    )
    last_option = '      "2": {next: bye, label: {es: "Salir", qu: "Lluqsiy"}}\n'
    loop_option = '      "3": {next: loop_a, label: {es: "Bucle", qu: "Muyu"}}\n'
    text = edit(MINIMAL_FLOW, last_option, last_option + loop_option)
    write_flow(flows_dir, text + loop)
    assert problems(flows_dir) == [
        "flows/demo.yaml:loop_a: messages loop without waiting for input: loop_a -> loop_b"
    ]


def test_article_longer_than_45_seconds(flows_dir: Path) -> None:
    """A library message of 120 words (about 52 s) is too long to listen to on the phone."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '"Una noticia."', '"' + "palabra " * 120 + '"'))
    assert problems(flows_dir) == [
        "flows/demo.yaml:news: 'es' text takes about 52 s to say; keep library messages under 45 s"
    ]


def test_flow_id_must_match_file_name(flows_dir: Path) -> None:
    """The flow id is the file name, so audio folders and settings find it."""
    write_flow(flows_dir, name="hotline")
    assert problems(flows_dir) == ["flows/hotline.yaml:(flow): flow id 'demo' must match the file name"]


def include(text: str, *files: str) -> str:
    """Add an `include:` line to a flow text."""
    return edit(text, "main: main\n", f"main: main\ninclude: [{', '.join(files)}]\n")


def test_include_with_extra_top_level_keys(flows_dir: Path) -> None:
    """An included file may only add nodes."""
    write_flow(flows_dir, include(MINIMAL_FLOW, "parts/more.yaml"))
    (flows_dir / "parts").mkdir()
    (flows_dir / "parts" / "more.yaml").write_text("id: more\nnodes: {}\n", encoding="utf-8")
    assert problems(flows_dir) == [
        "flows/parts/more.yaml:(flow): an included file may only hold 'nodes', found ['id']"
    ]


def test_missing_include_file(flows_dir: Path) -> None:
    """An include that points to no file names that file."""
    write_flow(flows_dir, include(MINIMAL_FLOW, "parts/missing.yaml"))
    assert problems(flows_dir) == ["flows/parts/missing.yaml:(flow): cannot read: No such file or directory"]


NEWS_NODE = """\
  news:
    type: article
    prompt: {es: "Una noticia.", qu: "Huk willakuy."}
    source: "Ley N.° 29785"
    back: main
"""


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (edit(NEWS_NODE, ', qu: "Huk willakuy."', ""), "prompt has no 'qu' text"),
        (edit(NEWS_NODE, "back: main", "back: mian"), "leads to unknown node 'mian'"),
        (edit(NEWS_NODE, '    source: "Ley N.° 29785"\n', ""), "Field required (source)"),
    ],
)
def test_problem_in_included_node_names_the_included_file(flows_dir: Path, broken: str, message: str) -> None:
    """A node that lives in an included file is reported with that file's name, which an editor opens."""
    write_flow(flows_dir, include(edit(MINIMAL_FLOW, NEWS_NODE, ""), "parts/news.yaml"))
    (flows_dir / "parts").mkdir()
    (flows_dir / "parts" / "news.yaml").write_text("nodes:\n" + broken, encoding="utf-8")
    assert problems(flows_dir) == [f"flows/parts/news.yaml:news: {message}"]


def test_included_node_already_defined(flows_dir: Path) -> None:
    """An included file cannot redefine a node of the main file."""
    write_flow(flows_dir, include(MINIMAL_FLOW, "parts/news.yaml"))
    (flows_dir / "parts").mkdir()
    (flows_dir / "parts" / "news.yaml").write_text("nodes:\n" + NEWS_NODE, encoding="utf-8")
    assert problems(flows_dir) == [
        "flows/parts/news.yaml:(flow): node 'news' is already defined in flows/demo.yaml"
    ]


def test_empty_directory(flows_dir: Path) -> None:
    """A folder without flow files is a problem, not an empty hotline."""
    flows_dir.mkdir()
    assert problems(flows_dir) == ["flows:(flow): no flow files (*.yaml) found"]


def test_problems_of_several_files_are_all_reported(flows_dir: Path) -> None:
    """One broken file does not hide the problems of another."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, "next: language", "next: lenguage"))
    write_flow(flows_dir, "- a list\n", name="other")
    assert problems(flows_dir) == [
        "flows/demo.yaml:greeting: leads to unknown node 'lenguage'",
        "flows/other.yaml:(flow): must be a YAML mapping",
    ]


def test_unhashable_yaml_key_is_a_problem_not_a_crash(flows_dir: Path) -> None:
    """`{{...}}` (a mapping used as a key) is reported like any other YAML mistake."""
    write_flow(flows_dir, edit(MINIMAL_FLOW, '{"1": es, "2": qu}', '{{"1": es, "2": qu}}'))
    [line] = problems(flows_dir)
    assert line.startswith("flows/demo.yaml:(flow): ")


def test_node_id_must_be_a_valid_id(flows_dir: Path) -> None:
    """A node id outside `[a-z][a-z0-9_]*` is refused; `_goodbye` would clash with a system prompt key."""
    text = edit(MINIMAL_FLOW, "next: language", "next: main")
    write_flow(flows_dir, edit(text, "  language:\n", "  _goodbye:\n"))
    assert any(line.startswith("flows/demo.yaml:_goodbye: ") for line in lint_flows(flows_dir)[0])
