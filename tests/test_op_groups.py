"""The training step's facts on the ops (Op.training_pass, Op.backward_of, Op.parameters,
Op.family) and --op's groups built on them: FAMILY:GROUP, FORWARD_OP:GROUP and globs."""

from __future__ import annotations

import pytest

from structbench.core.registry import FORWARD, INPUT_GRAD, PARAM_GRAD, PARAM_UPDATE, Op, Registry, default_registry


def test_every_backward_op_names_its_forward_op_and_its_parameters():
    registry = default_registry()
    backward = [op for op in registry.ops() if op.training_pass != FORWARD]
    assert {op.family for op in backward} >= {"dense", "lowrank", "sparse", "toeplitz"}
    for op in backward:
        forward = registry.op(op.backward_of)
        assert forward.training_pass == FORWARD and forward.family == op.family
        assert forward.dims == op.dims, op.name  # the same shape parameters mean the same layer
        assert op.parameters is not None, op.name
    shape = {"m": 300, "n": 200, "k": 7, "r": 4, "density": 0.1, "dist": "uniform"}
    counts = {op.name: op.parameters(shape) for op in backward if op.family not in ("conv", "local")}
    layer = {"c_in": 4, "n": 50, "c_out": 6, "kernel": 3, "stride": 2, "padding": 1, "dilation": 1, "groups": 1}
    assert registry.op("conv_grad_mv").parameters(layer) == registry.op("conv_mv_t").parameters(layer) == 6 * 4 * 3
    n_out = (50 + 2 - 3) // 2 + 1  # each output position its own weights
    assert registry.op("local_grad_mv").parameters(layer) == registry.op("local_mv_t").parameters(layer) == 6 * n_out * 4 * 3
    assert counts["dense_grad_mv"] == counts["dense_mv_t"] == 300 * 200
    assert counts["toeplitz_grad_mv"] == counts["toeplitz_grad_mm"] == 300 + 200 - 1
    assert counts["lowrank_grad_mv"] == counts["lora_grad_mv"] == (300 + 200) * 4
    assert counts["csr_grad_mv"] == registry.op("csr_grad_mv").out_shape(shape)[0]
    assert registry.op("dense_sgd_mv").training_pass == PARAM_UPDATE


@pytest.mark.parametrize("selector, expected", [
    ("toeplitz:backward", ["toeplitz_mv_t", "toeplitz_mm_t", "toeplitz_grad_mv", "toeplitz_grad_mm"]),
    ("dense:input-grad", ["dense_mv_t", "dense_mm_t"]),
    ("dense:update", ["dense_sgd_mv"]),
    ("lora_mv:backward", ["lora_mv_t", "lora_grad_mv"]),
    ("lora_mv:all", ["lora_mv", "lora_mv_t", "lora_grad_mv"]),
    ("sparse:param-grad", ["csr_grad_mv", "csr_grad_mm"]),
    ("toeplitz_*_t", ["toeplitz_mv_t", "toeplitz_mm_t"]),
    ("dense_mv", ["dense_mv"]),
])
def test_select_ops_expands_groups_and_globs(selector, expected):
    assert default_registry().select_ops([selector]) == expected


def test_select_ops_keeps_order_and_drops_repeats():
    assert default_registry().select_ops(["dense_mv_t", "dense:input-grad"]) == ["dense_mv_t", "dense_mm_t"]


@pytest.mark.parametrize("selector, message", [
    ("toeplitz:sideways", "unknown group 'sideways'; groups: all, forward, backward"),
    ("nosuch:backward", "'nosuch' is neither a family (conv, dense"),
    ("dense_mv_t:backward", "'dense_mv_t' is neither a family"),  # a backward op has no backward
    ("zz_*", "matches no op"),
])
def test_select_ops_refuses_what_picks_nothing(selector, message):
    with pytest.raises(ValueError, match="--op") as error:
        default_registry().select_ops([selector])
    assert message in str(error.value)


def test_cli_op_group_error_is_one_line_and_exit_2(capsys):
    from structbench.cli.main import main

    assert main(["run", "--plan", "--profile", "cpu", "--op", "toeplitz:sideways"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown group 'sideways'" in err


def test_cli_run_plan_takes_a_family_group(capsys):
    from structbench.cli.main import main

    assert main(["run", "--plan", "--profile", "cpu", "--op", "toeplitz:backward", "--dtype", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "toeplitz_grad_mv" in out and "toeplitz_mv_t" in out and "dense_mv " not in out


def test_list_shows_the_groups(capsys):
    from structbench.cli.main import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "op groups (--op FAMILY:GROUP" in out
    assert "toeplitz:param-grad" in out and "toeplitz_grad_mv (of toeplitz_mv)" in out


def test_registry_refuses_inconsistent_training_facts():
    registry = Registry()
    common = dict(summary="", dims=("m",), input_names=("x",), make_inputs=None, reference=None,
                  out_shape=lambda p: (1,), flops=lambda p: 1, min_bytes=lambda p, d: 1)
    registry.current_family = "mine"
    assert registry.add_op(Op(name="f", **common)).family == "mine"
    with pytest.raises(ValueError, match="backward_of"):
        registry.add_op(Op(name="g", training_pass=INPUT_GRAD, **common))
    with pytest.raises(ValueError, match="not registered"):
        registry.add_op(Op(name="h", training_pass=PARAM_GRAD, backward_of="nope", **common))
    with pytest.raises(ValueError, match="training_pass"):
        registry.add_op(Op(name="i", training_pass="sideways", backward_of="f", **common))


def test_training_step_cases_get_their_own_priority_tier():
    from structbench.run.runner import PRIORITY_TIERS, Case, case_tiers

    square, other = (("m", 4096), ("n", 4096)), (("m", 512), ("n", 256))
    cases = [Case("toeplitz_mv", "triton", "fp32", square), Case("toeplitz_grad_mv", "triton", "fp32", square),
             Case("toeplitz_mv_t", "triton", "fp32", square), Case("dense_grad_mv", "triton", "fp32", square),
             Case("toeplitz_mv_t", "triton", "fp32", other),  # no forward case at its shape
             Case("dense_grad_mv", "triton", "fp32", other),  # no structured gradient at its shape
             Case("csr_grad_mv", "triton", "fp32", (("m", 512), ("n", 512), ("density", 0.1))),  # nor dense
             Case("lowrank_grad_mv", "triton", "fp32", (("m", 4096), ("n", 4096), ("r", 16)))]  # the dense one: yes
    tier = PRIORITY_TIERS.index(next(t for t in PRIORITY_TIERS if t.startswith("C7")))
    tiers = case_tiers(cases)
    assert tiers[1:4] == [tier] * 3 and tiers[7] == tier
    assert tier not in (tiers[0], tiers[4], tiers[5], tiers[6])


def test_run_options_expand_groups_for_the_api_too():
    from structbench.run.benchmark import RunOptions, _check_names

    options = RunOptions(op=["dense:param-grad"], impl=["numpy"])
    _check_names(default_registry(), options)
    assert options.op == ["dense_grad_mv", "dense_grad_mm"]


def test_list_csv_has_the_family_and_pass(capsys):
    import csv

    from structbench.cli.main import main

    assert main(["list", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    grad = next(r for r in rows if r["op"] == "csr_grad_mv")
    assert (grad["family"], grad["pass"], grad["backward_of"]) == ("sparse", "param-grad", "csr_mv")
