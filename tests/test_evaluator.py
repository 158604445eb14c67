from arithlab.evaluator import LanguageModel, Tokenizer, digit_places, first_wrong_line, score
from arithlab.formats import get_format
from arithlab.model import GPT, GPTConfig
from arithlab.tasks import Problem
from arithlab.tokenizer import CharTokenizer


def test_our_gpt_and_character_tokenizer_are_what_evaluation_needs():
    assert isinstance(GPT(GPTConfig(n_layer=1, n_embd=16, n_head=2)), LanguageModel)
    assert isinstance(CharTokenizer(), Tokenizer)


def test_accuracy_on_problems_with_excluded_numbers_is_reported_apart():
    fmt = get_format("reverse")
    problems = [Problem("+", 527, 1), Problem("+", 2, 3), Problem("+", 4, 527), Problem("+", 10, 10)]
    outputs = ["825$", "5$", "000$", "02$"]  # right, right, wrong, right
    summary, rows = score(fmt, problems, outputs, excluded=[527])
    assert [r["correct"] for r in rows] == [True, True, False, True]
    assert summary["with_excluded"] == {"accuracy": 0.5, "n": 2}
    assert summary["without_excluded"] == {"accuracy": 1.0, "n": 2}
    assert summary["accuracy"] == 0.75


def test_without_excluded_numbers_the_summary_has_no_such_sections():
    summary, _ = score(get_format("plain"), [Problem("+", 1, 2)], ["3\n"])
    assert "with_excluded" not in summary and summary["by_carries"] == {"0": {"accuracy": 1.0, "n": 1}}


def test_several_operations_are_scored_each_apart():
    problems = [Problem("+", 1, 2), Problem("-", 5, 7), Problem("*", 3, 4)]
    summary, _ = score(get_format("plain"), problems, ["3\n", "-2\n", "13\n"])
    assert summary["by_operation"] == {
        "add": {"accuracy": 1.0, "n": 1},
        "mul": {"accuracy": 0.0, "n": 1},
        "sub": {"accuracy": 1.0, "n": 1},
    }


def test_digit_places_compare_each_place_of_the_true_answer_from_the_units_up():
    assert digit_places(1300, 1240) == [(1, True), (2, False), (3, False), (4, True)]
    assert digit_places(95, 495) == [(1, True), (2, True), (3, False)]  # a digit short
    assert digit_places(None, 12) == [(1, False), (2, False)]  # nothing parsed
    assert digit_places(-239, -239) == [(1, True), (2, True), (3, True)]
    assert digit_places(10495, 495) == [(1, True), (2, True), (3, True)]  # extra digits are not places


def test_by_place_counts_right_digits_of_wrong_answers_too():
    fmt = get_format("reverse")
    problems = [Problem("+", 542, 698), Problem("+", 366, 401), Problem("+", 5, 7)]
    outputs = ["0031$", "737$", "21$"]  # tens and hundreds wrong; tens wrong; right
    summary, rows = score(fmt, problems, outputs)
    assert [r["parsed"] for r in rows] == [1300, 737, 12]
    assert summary["by_place"] == {
        "1": {"accuracy": 1.0, "n": 3},
        "2": {"accuracy": 1 / 3, "n": 3},
        "3": {"accuracy": 0.5, "n": 2},
        "4": {"accuracy": 1.0, "n": 1},
    }


def test_functions_have_no_digit_places():
    problem = Problem("sin", 5000)  # sin(0.5)
    summary, _ = score(get_format("plain"), [problem], ["0.4794\n"])
    assert summary["by_place"] == {}


def test_first_wrong_line_is_where_the_output_first_leaves_the_reference():
    reference = "A->8 , C->0\nA->1 , C->0\nA->2 , C->0.\n218\n"
    assert first_wrong_line(reference, reference) is None
    assert first_wrong_line("A->5 , C->0\nA->1 , C->0\nA->5 , C->0.\n515\n", reference) == 1
    assert first_wrong_line("A->8 , C->0\nA->1 , C->0\nA->2 , C->1.\n1218\n", reference) == 3
    assert first_wrong_line("A->8 , C->0\n", reference) == 2  # stopped early
    assert first_wrong_line(reference + "A->", reference) == 5  # went on past the end


def test_scratchpads_count_wrong_answers_by_their_first_wrong_line():
    fmt = get_format("simplified")
    problems = [Problem("+", 215, 3), Problem("+", 428, 8), Problem("+", 215, 3), Problem("+", 50, 50)]
    outputs = [
        "A->8 , C->0\nA->1 , C->0\nA->2 , C->0.\n218\n",  # right
        "A->2 , C->1\nA->3 , C->0\nA->4 , C->0.\n432\n",  # 4+8: a's hundreds read as its units
        "A->8 , C->0\nA->1 , C->0\nA->2 , C->1.\n1218\n",  # a carry out of nothing
        "A->0 , C->0\nA->0 , C->0.\n100\n",  # a wrong carry, and still the right answer
    ]
    summary, rows = score(fmt, problems, outputs)
    assert [r["correct"] for r in rows] == [True, False, False, True]
    assert [r["first_wrong_line"] for r in rows] == [None, 1, 3, 2]
    assert summary["by_first_wrong_line"] == {"1": 1, "3": 1}  # wrong answers only


def test_one_line_formats_have_no_wrong_line():
    summary, rows = score(get_format("reverse"), [Problem("+", 5, 7)], ["31$"])
    assert "by_first_wrong_line" not in summary and "first_wrong_line" not in rows[0]
