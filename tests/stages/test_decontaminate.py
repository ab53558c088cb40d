from __future__ import annotations

import random

import pyarrow as pa
import pytest

from configs.schema import DecontaminateConfig
from stages.decontaminate import EVAL_TEXTS_SCHEMA, contaminated_by, eval_index, eval_texts_from_problems
from stages.problems import PROBLEMS_SCHEMA

EVAL = "Natalia sold clips to 48 of her friends in April and then half as many in May"


def _eval_texts(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.Table.from_pylist([{"eval_id": i, "text": t} for i, t in rows], schema=EVAL_TEXTS_SCHEMA)


def test_a_shared_ngram_names_the_eval_item_and_shorter_overlaps_do_not() -> None:
    index = eval_index(
        _eval_texts([("test/1", EVAL), ("test/2", "Weng earns 12 an hour for babysitting")]), DecontaminateConfig()
    )
    texts = [
        "so natalia sold clips to 48 of her friends in april",  # 8 shared words, case folded
        "natalia sold clips to 48 of her friends",  # exactly the first 8 words
        "natalia sold clips to 48 of her",  # only 7 words
        "46",
        "",
    ]
    assert contaminated_by(texts, index) == ["test/1", "test/1", None, None, None]


def test_the_smallest_eval_id_wins_when_several_share_the_ngram() -> None:
    index = eval_index(_eval_texts([("b", EVAL), ("a", EVAL + " too")]), DecontaminateConfig(ngram_words=4))
    assert contaminated_by(["to 48 of her friends"], index) == ["a"]


def test_eval_texts_come_from_prompts_answers_and_solutions() -> None:
    problems = pa.Table.from_pylist(
        [
            {"problem_id": "t1", "source": "s", "domain": "math", "prompt": EVAL, "answer": "72", "split": "test"},
            {
                "problem_id": "t2",
                "source": "s",
                "domain": "math",
                "prompt": "x",
                "answer": None,
                "solution": "worked steps",
                "split": "test",
            },
        ],
        schema=PROBLEMS_SCHEMA,
    )
    table = eval_texts_from_problems(problems)
    assert table.schema == EVAL_TEXTS_SCHEMA
    assert sorted(zip(table.column("eval_id").to_pylist(), table.column("text").to_pylist(), strict=True)) == [
        ("t1", "72"),
        ("t1", EVAL),
        ("t2", "worked steps"),
        ("t2", "x"),
    ]


def test_bad_eval_table_is_refused() -> None:
    with pytest.raises(ValueError, match="EVAL_TEXTS_SCHEMA"):
        eval_index(pa.table({"id": ["x"], "text": ["y"]}), DecontaminateConfig())


def test_template_words_are_left_out_and_content_still_matches() -> None:
    instruction = "Reply with the final number only, written after four hash marks please."
    rng = random.Random(0)
    vocabulary = [f"word{n}" for n in range(500)]
    questions = [" ".join(rng.sample(vocabulary, 12)) for _ in range(12)]
    eval_texts = _eval_texts([(f"t{n}", f"{q} {instruction}") for n, q in enumerate(questions)])
    index = eval_index(eval_texts, DecontaminateConfig(template_min_items=10))
    kept_all = eval_index(eval_texts, DecontaminateConfig(template_share=None))
    other_problem = f"{' '.join(rng.sample(vocabulary, 12))} {instruction}"
    leaked = f"Question: {questions[3]}"
    assert contaminated_by([other_problem, leaked], kept_all) == ["t0", "t3"]  # every prompt shares the instruction
    assert contaminated_by([other_problem, leaked], index) == [None, "t3"]


def test_template_words_are_counted_per_source() -> None:
    """Two tasks, each with its own template in half of the items: both templates are found."""
    legs = [{"eval_id": f"a{n}", "text": f"count legs of {n} spiders and {n} ants", "source": "a"} for n in range(10)]
    sums = [{"eval_id": f"b{n}", "text": f"compute {n} plus {n} minus {n + 1}", "source": "b"} for n in range(10)]
    index = eval_index(pa.Table.from_pylist(legs + sums, schema=EVAL_TEXTS_SCHEMA), DecontaminateConfig(ngram_words=2))
    assert contaminated_by(["count legs of spiders", "compute plus minus"], index) == [None, None]
    assert contaminated_by(["spiders 3 and ants 3", "4 plus 5"], index) == ["a3", "b4"]


def test_a_small_held_out_split_keeps_every_word() -> None:
    index = eval_index(_eval_texts([(f"t{n}", EVAL) for n in range(9)]), DecontaminateConfig())
    assert len(index.template_words) == 0
    assert contaminated_by([EVAL], index) == ["t0"]


def test_a_small_held_out_split_finds_its_template_in_the_other_splits() -> None:
    """Three held-out items cannot show a template; the train pool of the same source can."""
    instruction = "Reply with the final number only, written after four hash marks please."
    rng = random.Random(1)
    vocabulary = [f"word{n}" for n in range(500)]
    texts = [
        {"eval_id": f"p{n}", "text": f"{' '.join(rng.sample(vocabulary, 12))} {instruction}", "source": "s"}
        for n in range(30)
    ]
    held_out = pa.Table.from_pylist(texts[:3], schema=EVAL_TEXTS_SCHEMA)
    every_split = pa.Table.from_pylist(texts, schema=EVAL_TEXTS_SCHEMA)
    alone = eval_index(held_out, DecontaminateConfig())
    with_pool = eval_index(held_out, DecontaminateConfig(), template_texts=every_split)
    train_prompts = [row["text"] for row in texts[3:]]
    assert len(alone.template_words) == 0 and all(contaminated_by(train_prompts, alone))
    assert contaminated_by(train_prompts, with_pool) == [None] * len(train_prompts)
    assert contaminated_by([f"Question: {texts[1]['text']}"], with_pool) == ["p1"]  # a copied question still is
