"""Regression tables for the math verifier, written in the style of real model outputs, plus hostile inputs."""

from __future__ import annotations

import time

import pytest

from verifiers import VERIFIERS, UnknownVerifierError, get_verifier
from verifiers.math import VERSION, extract_answer, judge, normalize, verify

# category -> (completion, gold, expected correct)
TABLES: dict[str, list[tuple[str, str, bool]]] = {
    "numbers": [
        ("So she has 3,250 marbles.\n#### 3,250", "3250", True),
        ("The total is \\boxed{12,\\!480}.", "12480", True),
        ("\\boxed{0.250}", "1/4", True),
        ("\\boxed{-007}", "-7", True),
        ("\\boxed{2.5\\times 10^{3}}", "2500", True),
        ("\\boxed{\\$4.50}", "4.5", True),
        ("The answer is 71.", "17", False),
        ("Therefore the answer is 1 500 dollars.", "1500", True),
        ("\\boxed{1e-3}", "0.001", True),  # a whole answer in e-notation is a number
    ],
    "fractions": [
        ("\\boxed{\\dfrac{6}{8}}", "\\frac34", True),
        ("Thus the probability is $\\boxed{\\tfrac{5}{12}}$.", "5/12", True),
        ("\\boxed{2\\frac{1}{4}}", "9/4", True),
        ("\\boxed{0.4166667}", "\\frac{5}{12}", True),  # 7 significant digits: accepted as a rounding
        ("\\boxed{0.42}", "\\frac{5}{12}", False),  # 2 significant digits: must be exact
        ("\\boxed{\\frac{5}{13}}", "\\frac{5}{12}", False),
    ],
    "latex and free form": [
        ("We get $y = 7$, so the value is \\(7\\).", "7", True),
        ("Hence \\[ \\boxed{\\left(\\frac{1}{2}\\right)} \\]", "0.5", True),
        ("It takes 45 minutes. I hope it is correct.", "45", True),
        ("Final Answer: The final answer is $\\frac{\\sqrt{2}}{2}$. I hope it is correct.", "\\frac{1}{\\sqrt2}", True),
        ("答案是 36", "36", True),
        ("La réponse est 12 euros.", "12", True),
        ("Step 1: 3 + 4 = 7.\nStep 2: 7 * 2 = 14.", "14", True),
        ("Step 1: 3 + 4 = 7.\nStep 2: 7 * 2 = 14.", "7", False),
    ],
    "units and percent": [
        ("\\boxed{36\\text{ cm}^2}", "36", True),
        ("The car travels $\\boxed{90 \\text{ km}}$.", "90 km", True),
        ("\\boxed{45^\\circ}", "45", True),
        ("\\boxed{12.5\\%}", "12.5", True),
        ("\\boxed{0.125}", "12.5\\%", True),
        ("\\boxed{13\\%}", "12.5\\%", False),
    ],
    "expressions": [
        ("\\boxed{(a+b)^2}", "a^2+2ab+b^2", True),
        ("\\boxed{(a+b)^2}", "a^2+b^2", False),
        ("\\boxed{\\frac{2}{x-1}-\\frac{2}{x+1}}", "\\frac{4}{x^2-1}", True),
        ("\\boxed{2\\sin t\\cos t}", "\\sin(2t)", True),
        ("\\boxed{\\sqrt{8}}", "2\\sqrt2", True),
        ("\\boxed{\\sqrt{t^2}}", "t", False),
        ("\\boxed{\\ln(xy)}", "\\ln x+\\ln y", True),
        ("\\boxed{e^{i\\pi}}", "-1", False),  # a number gold needs a number (policy in the README)
        ("\\boxed{\\binom{6}{2}}", "15", False),  # a number gold needs a number (policy in the README)
        ("\\boxed{5!}", "120", False),  # a number gold needs a number (policy in the README)
        ("\\boxed{\\log_2 32}", "5", False),  # a number gold needs a number (policy in the README)
        ("\\boxed{\\sqrt[3]{-27}}", "-3", False),  # a number gold needs a number (policy in the README)
        ("\\boxed{\\pi r^2 h/3}", "\\frac{1}{3}\\pi r^2h", True),
    ],
    "sets, intervals, tuples": [
        ("\\boxed{(-\\infty, 2] \\cup (5, \\infty)}", "(-\\infty,2]\\cup(5,\\infty)", True),
        ("\\boxed{(-\\infty, 2) \\cup (5, \\infty)}", "(-\\infty,2]\\cup(5,\\infty)", False),
        ("\\boxed{\\{3, -1\\}}", "\\{-1, 3\\}", True),
        ("\\boxed{(3, -1)}", "(-1, 3)", False),
        ("The roots are $x = 2$ and $x = -5$.", "-5, 2", True),
        ("\\boxed{x = 2 \\pm \\sqrt{3}}", "2+\\sqrt3, 2-\\sqrt3", True),
        ("\\boxed{(1, 2), (2, 1)}", "(2,1),(1,2)", True),
        ("\\boxed{(1, 2), (2, 2)}", "(2,1),(1,2)", False),
        ("\\boxed{\\emptyset}", "\\varnothing", True),
    ],
    "equations and inequalities": [
        ("\\boxed{y = 3x - 2}", "3x - y = 2", True),
        ("\\boxed{y = 3x + 2}", "3x - y = 2", False),
        ("\\boxed{m = 4}", "4", True),
        ("\\boxed{t > -3}", "(-3, \\infty)", True),
        ("\\boxed{3 - t < 6}", "t > -3", True),
        ("\\boxed{t \\geq -3}", "t > -3", False),
        ("\\boxed{-1 < x \\le 4}", "(-1, 4]", True),
        ("\\boxed{x^2 < 9}", "-3 < x < 3", True),
    ],
    "matrices": [
        ("\\boxed{\\begin{pmatrix} 2 & 0 \\\\ 0 & 2 \\end{pmatrix}}", "\\begin{bmatrix}2&0\\\\0&2\\end{bmatrix}", True),
        (
            "\\boxed{2\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}}",
            "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}",
            True,
        ),
        ("\\boxed{\\begin{pmatrix} 2 \\\\ 0 \\end{pmatrix}}", "\\begin{pmatrix}2&0\\end{pmatrix}", False),
    ],
    "repeating decimals": [
        ("The 3 repeats, so the answer is $\\boxed{0.\\overline{3}}$.", "\\frac{1}{3}", True),
        ("\\boxed{0.1\\overline{6}}", "\\frac{1}{6}", True),
        ("\\boxed{0.\\dot{3}}", "\\frac13", True),
        ("\\boxed{0.\\dot{1}4285\\dot{7}}", "\\frac{1}{7}", True),  # dots bound the repeating block
        ("\\boxed{\\frac{4}{33}}", "0.\\overline{12}", True),
        ("\\boxed{0.\\overline{9}}", "1", True),
        ("\\boxed{0.\\overline{21}}", "0.\\overline{12}", False),
        ("\\boxed{0.\\overline{3}}", "0.3", False),
        ("\\boxed{0.3}", "\\frac{1}{3}", False),
    ],
    "repeating decimals with an ellipsis": [
        ("\\boxed{0.111\\ldots}", "\\frac{1}{9}", True),
        ("The answer is 0.1666...", "\\frac{1}{6}", True),
        ("\\boxed{0.142857142857\\dots}", "\\frac{1}{7}", True),
        ("\\boxed{0.111\\ldots}", "\\frac{1}{8}", False),
        ("\\boxed{0.12\\ldots}", "\\frac{4}{33}", False),  # no block repeats twice: not a repeating decimal
    ],
    "mixed numbers": [
        ("The answer is 4 4/9.", "\\frac{40}{9}", True),
        ("\\boxed{-1 000 4/9}", "-\\frac{9004}{9}", True),
        ("\\boxed{4 0/9}", "4", True),
        ("The answer is 4 4/9.", "4", False),
        ("\\boxed{11 6/6}", "12", False),  # an improper fraction makes no mixed number
        ("\\boxed{11 7/6}", "\\frac{73}{6}", False),
        ("\\boxed{4 4/0}", "4", False),
        ("\\boxed{11.0 4/9}", "\\frac{103}{9}", False),
    ],
    "units after a number": [
        ("The answer is 250 g.", "250", True),
        ("The answer is 6.0E-3 M.", "6.0\\times10^{-3}", True),
        ("\\boxed{6 \\text{ (cm)}}", "6", True),
        ("\\boxed{5\\text{-inch}}", "5", True),
        ("The answer is 250 g.", "25", False),
        ("\\boxed{17 x}", "17", False),  # a letter that is no unit symbol may be a variable
    ],
    "set-builder over the integers": [
        ("\\boxed{\\{x \\in \\mathbb{Z} \\mid 1 \\le x \\le 3\\}}", "\\{1,2,3\\}", True),
        ("\\boxed{\\{n \\in \\mathbb{Z} : -2 < n \\leq 1\\}}", "\\{-1,0,1\\}", True),
        ("\\boxed{\\{x \\in \\mathbb{Z} \\mid 1 \\le x \\le 3\\}}", "\\{1,2\\}", False),
        ("\\boxed{\\{x \\in \\mathbb{Z} \\mid 1 \\le x \\le 3\\}}", "[1, 3]", False),  # integers, not an interval
    ],
    "values said in a short sentence": [
        ("The probability is one half.", "\\frac{1}{2}", True),
        ("The domain is all real numbers.", "(-\\infty, \\infty)", True),
        ("The angle is $30$ degrees.", "\\frac{\\pi}{6}", True),
        ("The probability is one third.", "\\frac{1}{2}", False),
        ("The angle is $30$.", "\\frac{\\pi}{6}", False),
    ],
    "e-notation": [
        ("\\boxed{1.5e3}", "1500", True),
        ("The answer is 2.5E-4.", "2.5\\times 10^{-4}", True),
        ("\\boxed{1.2e+05}", "120000", True),
        ("\\boxed{1.5e4}", "1500", False),
        ("\\boxed{2e}", "2e", True),  # `e` alone stays Euler's number
        ("\\boxed{2e}", "2", False),
        ("\\boxed{\\frac{1}{432}}", "2.314814814815 \\times 10^{-3}", True),  # a rounded gold in scientific form
        ("\\boxed{\\frac{1}{433}}", "2.314814814815 \\times 10^{-3}", False),
    ],
    "units inside text": [
        ("\\boxed{150\\text{ m}^2}", "150", True),
        ("\\boxed{4.5\\text{ kg}}", "4.5", True),
        ("\\boxed{13\\text{ cm}}", "12", False),
        ("\\boxed{7, -2 \\text{ and } -5}", "-5, -2, 7", True),
    ],
    "complex numbers": [
        ("\\boxed{3i+2}", "2+3i", True),
        ("\\boxed{2-3i}", "2+3i", False),
        ("\\boxed{(3+i)(1+i)}", "2+4i", True),
        ("\\boxed{(3+i)(1+i)}", "4+2i", False),
        ("\\boxed{\\frac{1+i}{1-i}}", "i", True),
        ("\\boxed{i^2}", "-1", False),  # a number gold needs a number (policy in the README)
    ],
    "degrees and radians": [
        ("\\boxed{\\frac{\\pi}{3}}", "60^\\circ", True),
        ("\\boxed{180^\\circ}", "\\pi", True),
        ("\\boxed{30^\\circ}", "\\frac{\\pi}{3}", False),
        ("\\boxed{30}", "\\frac{\\pi}{6}", False),  # 30 without a degree sign is 30 radians
        ("\\boxed{\\frac{3\\pi}{2}}", "120^\\circ", False),
    ],
    "reals, set-builder, vectors": [
        ("\\boxed{\\mathbb{R}}", "(-\\infty, \\infty)", True),
        ("\\boxed{(-\\infty, \\infty)}", "\\mathbb{R}", True),
        ("\\boxed{\\text{all real numbers}}", "(-\\infty,\\infty)", True),
        ("\\boxed{\\mathbb{R}}", "[0, \\infty)", False),
        ("\\boxed{\\{x \\mid x \\geq 2\\}}", "[2, \\infty)", True),
        ("\\boxed{\\{x : x > 2\\}}", "[2, \\infty)", False),
        ("\\boxed{\\langle 1, 2, 3 \\rangle}", "(1, 2, 3)", True),
        ("\\boxed{<3, -4>}", "(3, -4)", True),
        ("\\boxed{\\langle -1, 2 \\rangle}", "\\langle 2, -1 \\rangle", False),
    ],
    "times and ratios": [
        ("\\boxed{20:34:00}", "20:34", True),  # a clock time with zero seconds is the time to the minute
        ("\\boxed{20:34:01}", "20:34", False),
        ("\\boxed{20:34}", "20:34:00", True),
        ("\\boxed{20:35:00}", "20:34", False),
        ("The train leaves at 20:34:00.", "20:34", True),  # a time in prose is one number, not its last part
        ("The train leaves at 20:35.", "20:34", False),
        ("The ratio of boys to girls is 3:4.", "3:4", True),
        ("The ratio of boys to girls is 4:3.", "3:4", False),
        ("\\boxed{1:2:00}", "1:2", False),  # three parts are not a clock time to the minute: a ratio stays a ratio
    ],
    "a constant times a vector": [
        ("\\boxed{\\frac{1}{5}\\langle 3, 4\\rangle}", "\\langle \\frac{3}{5}, \\frac{4}{5}\\rangle", True),
        ("\\boxed{\\frac{1}{5}\\langle 4, 3\\rangle}", "\\langle \\frac{3}{5}, \\frac{4}{5}\\rangle", False),
        ("\\boxed{2 \\cdot (1, -3)}", "(2, -6)", True),
        ("\\boxed{2 \\cdot (1, -3)}", "(2, 6)", False),
        ("\\boxed{-\\frac{1}{2}(2, 4)}", "(-1, -2)", True),
        ("\\boxed{x(3, 4)}", "(3, 4)", False),  # a variable before a tuple is no scaling (it may be a function)
        ("\\boxed{2[0, 1]}", "[0, 2]", False),  # only round brackets are scaled
        ("\\boxed{(1, 2)(3, 4)}", "(3, 8)", False),  # a tuple times a tuple is no product
    ],
    "plain-text notation": [
        ("\\boxed{2^{100}}", "2**100", True),  # `**` is Python's power
        ("\\boxed{2^{99}}", "2**100", False),
        ("\\boxed{(x^2)^3}", "x**6", True),
        ("\\boxed{x^5}", "x**6", False),
        ("\\boxed{2\\sqrt{2}}", "sqrt(8)", True),  # a function's argument in parentheses
        ("\\boxed{\\sqrt{2}}", "sqrt(8)", False),
        ("\\boxed{10\\sqrt{2}}", "5*[1+sqrt(2)]", False),  # square brackets around one term group it
        ("\\boxed{5 + 5\\sqrt{2}}", "5*[1+sqrt(2)]", True),
        ("\\boxed{(-\\infty, 5)}", "(-infinity,5)", True),  # the word infinity is the symbol
        ("\\boxed{(-\\infty, 5]}", "(-infinity,5)", False),
        ("The answer is infinity.", "\\infty", True),
        ("\\boxed{-\\infty}", "infinity", False),
        ("\\boxed{2**2**2**2**2**2}", "5", False),  # a power tower is refused, whatever its spelling
    ],
    "unfinished responses": [
        ("Work in progress: 10", "10", False),  # says it is not finished: no final answer
        ("Total: 10", "10", True),
        ("Still working on it, 10 so far", "10", False),
        ("Work in progress.\n\nFinal answer: 10", "10", True),  # a cue states the answer, finished or not
        ("To be continued... \\boxed{10}", "10", True),
    ],
    "numbers in words": [
        ("After checking every case, the answer is seventeen.", "17", True),
        ("The final answer is twenty-one.", "21", True),
        ("So the answer is one hundred and five.", "105", True),
        ("The answer is one half.", "\\frac{1}{2}", True),
        ("**Answer:** five", "5", True),
        ("Counting again gives eight, so the answer is nine.", "8", False),
        ("The answer is fifteen.", "16", False),
    ],
    "numbers in words, more shapes": [
        ("The answer is negative four.", "-4", True),
        ("The answer is four.", "-4", False),
        ("The answer is one and a half.", "\\frac32", True),
        ("The answer is one and a half.", "1", False),
        ("The answer is two and three quarters.", "\\frac{11}{4}", True),  # a mixed number, not 5/4
        ("The answer is two and three quarters.", "\\frac{5}{4}", False),
        ("I think the answer is nine, because 3 squared.", "9", True),  # the first number, digits or words
        ("I think the answer is nine, because 3 squared.", "3", False),
        ("Thus there are $\\boxed{\\text{three}}$ solutions.", "3", True),  # a whole answer in words
        ("\\boxed{\\text{Four}}", "4", True),
        ("\\boxed{\\text{four}}", "5", False),
        ("\\boxed{\\text{three or four}}", "3", False),
        ("The answer is one of them.", "\\text{one}", False),  # the pronoun
        ("The answer is one.", "\\text{one}", True),
        ("\\text{The answer is } 6", "\\text{The answer is } 6", True),  # a cue inside a text group
        ("\\text{The answer is } 5", "6", False),
    ],
    "a name or cue before the value, inside the box": [
        ("\\boxed{\\text{Area} = 36}", "36", True),
        ("\\boxed{\\text{Area} = 35}", "36", False),
        ("\\boxed{\\text{The answer is } 36}", "36", True),
        ("\\boxed{\\text{not } 36}", "36", False),  # only a name or a cue is dropped, never a negation
        ("\\boxed{\\text{Area} = 5 = 36}", "36", False),  # a false claim stays a false claim
    ],
    "degrees inside trigonometric functions": [
        ("\\boxed{2 - \\sqrt{3}}", "\\tan 15^\\circ", True),
        ("\\boxed{2 + \\sqrt{3}}", "\\tan 15^\\circ", False),
        ("\\boxed{2\\sin 50^\\circ}", "2\\cos 40^\\circ", True),
        ("\\boxed{2\\sin 40^\\circ}", "2\\cos 40^\\circ", False),
        ("\\boxed{\\sec 20^\\circ}", "\\frac{1}{\\cos 20^\\circ}", True),  # `^\\circ}` keeps the brace
        ("\\boxed{\\sec 20^\\circ}", "\\frac{1}{\\sin 20^\\circ}", False),
    ],
    "reals of one sign, unions, vectors": [
        ("\\boxed{\\mathbb{R}^+}", "(0, \\infty)", True),
        ("\\boxed{\\mathbb{R}^+}", "[0, \\infty)", False),
        ("\\boxed{[0,\\infty)}", "\\mathbb{R}_{\\geq 0}", True),
        ("\\boxed{(0,\\infty)}", "\\mathbb{R}_{\\geq 0}", False),
        ("\\boxed{\\mathbb{R}^-_0}", "(-\\infty, 0]", True),
        ("\\boxed{(-\\infty, 0) \\cup (1, \\infty)}", "\\{x \\mid x < 0 \\text{ or } x > 1\\}", True),
        ("\\boxed{(-\\infty, 0] \\cup (1, \\infty)}", "\\{x \\mid x < 0 \\text{ or } x > 1\\}", False),
        ("\\boxed{\u27e81, 2\u27e9}", "(1, 2)", True),  # Unicode angle brackets
        ("\\boxed{\u27e82, 1\u27e9}", "(1, 2)", False),
        ("\\boxed{2\\mathbf{i} - \\mathbf{j} + 3\\mathbf{k}}", "\\langle 2,-1,3\\rangle", True),  # unit vectors
        ("\\boxed{2\\mathbf{i} + \\mathbf{j} + 3\\mathbf{k}}", "\\langle 2,-1,3\\rangle", False),
        ("\\boxed{\\vec{v} = 3\\hat{i} - \\frac{1}{2}\\hat{k}}", "(3, 0, -\\frac12)", True),
        ("\\boxed{3\\hat{i} - \\frac{1}{2}\\hat{j}}", "(3, 0, -\\frac12)", False),  # two entries, not three
        ("\\boxed{\\langle 1, 0, -1 \\rangle}", "\\mathbf{i} - \\mathbf{k}", True),
        ("\\boxed{\\mathbf{i} + \\mathbf{i}}", "(2, 0)", False),  # a unit vector twice is not read as a vector
    ],
    "e-notation in prose": [
        ("The answer is 1.2e4 joules.", "12000", True),
        ("The answer is 1.2e3 joules.", "12000", False),
    ],
    "rounded decimals inside an expression": [
        # a decimal of at least 6 significant digits is a rounded value, in an expression as alone
        ("\\boxed{\\frac{18.02}{0.013} ( e^{0.013t} - 1 )}", "1386.15*[e^{0.013*t}-1]", True),
        ("\\boxed{\\frac{18.03}{0.013} ( e^{0.013t} - 1 )}", "1386.15*[e^{0.013*t}-1]", False),
        ("\\boxed{1386.2 ( e^{0.013t} - 1 )}", "1386.15*[e^{0.013*t}-1]", False),  # beyond the rounding
        ("\\boxed{1386.15 x + 1000000}", "\\frac{18.02}{0.013} x + 1000000", True),
        ("\\boxed{1386 x + 1000000}", "1386.15 x + 1000000", False),  # the bound is the decimal's, not relative
        ("\\boxed{3.14159 r^2}", "\\pi r^2", True),
        ("\\boxed{3.14160 r^2}", "\\pi r^2", False),
        ("\\boxed{1.414 x}", "\\sqrt{2} x", False),  # 4 significant digits: must be exact
        ("\\boxed{3.14159 r^2}", "3.141592 r^2", False),  # decimals on both sides must agree exactly
    ],
    "text and choices": [
        ("The correct option is \\boxed{\\text{(B)}}.", "B", True),
        ("\\boxed{\\textbf{D}}", "B", False),
        ("\\boxed{\\text{Tuesday}}", "tuesday", True),
        ("\\boxed{\\text{never}}", "always", False),
    ],
    "boxes without braces": [
        # the MATH dataset's `\\boxed 4`: the argument runs to a space, a `$` or the end
        ("The answer is \\boxed 4", "4", True),
        ("The answer is \\boxed 4", "5", False),
        ("So we get $\\boxed 7$ as the answer.", "7", True),
        ("So we get $\\boxed 72$ as the answer.", "7", False),  # the whole argument, not its first digit
        ("First \\boxed 4, then after checking \\boxed{5}.", "4", False),  # the last box is the answer
    ],
    "membership statements": [
        # `x \\in S` states the answer S, as `x = 17` states 17 (README, "What cannot be gamed")
        ("so \\boxed{x \\in [-2, 7]}", "[-2,7]", True),
        ("\\boxed{[-2,7]}", "x \\in [-2,7]", True),
        ("\\boxed{x \\in (-2, 7)}", "[-2,7]", False),
        ("\\boxed{x \\notin [-2, 7]}", "[-2,7]", False),
    ],
    "closed reasoning blocks": [
        # what a closed `<think>` block says is working: only the text after it holds the answer
        ("<think>maybe \\boxed{1}</think> final \\boxed{2}", "2", True),
        ("<think>maybe \\boxed{1}</think> final \\boxed{2}", "1", False),
        ("Reasoning content </think> \\boxed{\\frac{63}{400}}", "\\frac{63}{400}", True),
        ("<think> My answer is \\boxed{42} </think> Some other text.", "42", False),
        ("<think> The answer is \\boxed{42} </think> Here's a wrong answer: \\boxed{43}.", "42", False),
        ("<think> I will say 42 </think>", "42", False),  # nothing after the block: no answer
    ],
    "complex conjugates and polar forms": [
        # `\overline{z}` of a complex number is its conjugate; of digits after a point, a repeating decimal
        ("\\boxed{\\overline{1+i}}", "1-i", True),
        ("\\boxed{\\overline{1+i}}", "1+i", False),  # the conjugate is not the number itself
        ("\\boxed{\\overline{3-2i} + 1}", "4+2i", True),
        ("\\boxed{0.\\overline{3}}", "\\frac{1}{3}", True),  # digits: a repeating decimal, not a conjugate
        ("\\boxed{0.\\overline{3}}", "\\frac{1}{3} - i", False),
        # `r \operatorname{cis} \theta` is `r e^{i\theta}`, in radians or in degrees
        ("\\boxed{2\\operatorname{cis}\\left(\\frac{\\pi}{3}\\right)}", "1+\\sqrt{3}i", True),
        ("\\boxed{2\\operatorname{cis}(\\pi/6)}", "1+\\sqrt{3}i", False),
        ("\\boxed{2 \\text{cis} 60^\\circ}", "1+\\sqrt{3}i", True),
        ("\\boxed{2 \\text{cis} 30^\\circ}", "1+\\sqrt{3}i", False),
        ("\\boxed{1+\\sqrt{3}i}", "2\\operatorname{cis}(\\pi/3)", True),
        ("\\boxed{2e^{i\\pi/3}}", "1+\\sqrt{3}i", True),
        ("\\boxed{2e^{i\\pi/6}}", "1+\\sqrt{3}i", False),
    ],
    "degrees written \\deg": [
        ("\\boxed{30\\deg}", "30", True),
        ("\\boxed{30\\deg}", "\\frac{\\pi}{6}", True),
        ("\\boxed{31\\deg}", "30", False),
        ("\\boxed{\\sin 30\\deg}", "\\sin \\frac{\\pi}{6}", True),
    ],
    "quantity words": [
        ("The answer is a dozen.", "12", True),
        ("The answer is \\boxed{\\text{a dozen}}", "12", True),
        ("The answer is a dozen.", "13", False),
        ("The answer is two dozen.", "24", True),
        ("The answer is half a dozen.", "6", True),
        ("The answer is half a dozen.", "12", False),  # not the dozen it ends with
        ("The answer is a third.", "\\frac{1}{3}", True),
        ("The answer is a third.", "\\frac{1}{4}", False),
    ],
    "the reals with a condition": [
        # `x \in \mathbb{R}, x \neq 0`: the reals add nothing to the condition that follows
        ("\\boxed{x \\in \\mathbb{R}, x \\neq 0}", "(-\\infty,0)\\cup(0,\\infty)", True),
        ("\\boxed{x \\in \\mathbb{R}, x \\neq 1}", "(-\\infty,0)\\cup(0,\\infty)", False),
        ("\\boxed{x \\in \\mathbb{R}}", "(-\\infty,0)\\cup(0,\\infty)", False),
        ("\\boxed{x \\in \\mathbb{R}, x > 0}", "(0, \\infty)", True),
        ("\\boxed{x \\in \\mathbb{R}, y > 0}", "(0, \\infty)", False),  # a condition on another variable
    ],
    "several boxes": [
        # boxes joined by a word of sequence: the later one replaces the earlier (`and`, `or` alone join them)
        ("First \\boxed{wrong} and then \\boxed{correct}", "correct", True),
        ("First \\boxed{3} and then \\boxed{4}", "4", True),
        ("First \\boxed{3} and then \\boxed{4}", "3", False),
        ("\\boxed{3} and \\boxed{4}", "3, 4", True),
        ("\\boxed{3} and \\boxed{4}", "4", False),  # two candidates for one answer
    ],
    "a number after the last math span": [
        # a short text is read as a long one is: a number written after the last math span is said last
        ("The equation is $x=\\frac{1}{4}$. Some other numbers are 1, 2, 3.", "1/4", False),
        ("The equation is $x=\\frac{1}{4}$.", "1/4", True),
        ("We get $y = 7$, so the value is \\(7\\).", "7", True),
    ],
    "an unclosed last box": [
        # a last box that is never closed is an unfinished answer (a truncated response): no answer at all,
        # neither the unfinished text nor an earlier box the response went on from
        ("\\boxed{3} then \\boxed{\\frac{1}{2}", "3", False),
        ("\\boxed{3} then \\boxed{\\frac{1}{2}", "\\frac{1}{2}", False),
        ("The answer is \\boxed{42", "42", False),
        ("The answer is \\boxed{42}", "42", True),
    ],
    "a worked limit": [
        # a limit is evaluated exactly, so a stated `\\lim ... = value` is a relation whose sides are checked
        ("$\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1$", "1", True),
        ("$\\lim_{x \\to 0} \\frac{\\sin 2x}{x} = 1$", "1", False),  # the limit is 2: a false relation
        ("$\\lim_{x \\to 0} \\frac{\\sin x}{x} = 2$", "2", False),  # a true last side does not make it true
        ("$\\lim_{x \\to 0} \\frac{\\sin x}{x}$", "1", False),  # unevaluated: not a number written out
        ("$\\lim_{x \\to \\infty} \\left(1 + \\frac{1}{x}\\right)^x = e$", "e", True),
        ("$\\lim_{x \\to \\infty} \\left(1 + \\frac{2}{x}\\right)^x = e$", "e", False),
        ("$\\lim_{x \\to 0} \\frac{|x|}{x} = 1$", "1", False),  # two-sided, it does not exist
    ],
    "a long decimal cut off": [
        # a long decimal stands for its value rounded, not cut off: `3.141592653` does not round pi (policy)
        ("\\boxed{3.141592654}", "\\pi", True),
        ("\\boxed{3.141592653}", "\\pi", False),
        ("\\boxed{0.666667}", "\\frac{2}{3}", True),
        ("\\boxed{0.666666}", "\\frac{2}{3}", False),
    ],
    "step and list numbers": [
        # a number that labels a step or a list item at the start of a line is not a value the response states
        ("**4. VERIFY:**\n\nSo x = 12.\n\n**5. FORMAT:**\n\nThe work checks out.", "12", True),
        ("**4. VERIFY:**\n\nThe steps are sound.\n\n**5. FORMAT:**\n\nThere is no solution for x.", "5", False),
        ("1. First we add 3 and 4.\n2. Then we double the sum.", "2", False),
        ("Step 5: we stop here, since the problem cannot be finished without more data.", "5", False),
        # a number at the start of a line that is not a label stays the value said last
        ("2) Multiply the two counts.\n3) Then add the rest.\nThe total comes out as\n5 apples", "5", True),
        ("Adding them up gives the length of the rope:\n5.5 meters", "5.5", True),
    ],
    "labels that reject their value": [
        # a value labelled as not the answer is no answer, however the response ends (policy)
        ("Not the answer: 42", "42", False),
        ("Previous answer: 42", "42", False),
        ("This is not the final answer: 42", "42", False),
        ("错误答案：42", "42", False),
        ("这不是最终答案：42", "42", False),
        ("Wrong answer: 7; corrected final answer: 42", "42", True),  # a later clause gives the answer
        ("I'm not sure, but the answer is 42", "42", True),  # the doubt is another clause
        ("Final answer: 42", "42", True),
        ("In this example the answer is 42", "42", True),  # an adjective must label the answer itself
        ("The previous answer was wrong. The answer is 42", "42", True),
    ],
    "unfinished boxes and answer tags": [
        # a box or an answer tag never closed is an unfinished answer, even around or after a closed one
        ("<answer>42</answer> then <answer>", "42", False),
        ("<answer>41</answer> then <answer>42</answer>", "42", True),
        ("<answer>broken \\boxed{42}", "42", False),
        ("<answer>\\boxed{42}</answer>", "42", True),
        ("Bad \\boxed{4 then final \\boxed{4}", "4", False),
        ("First \\boxed{3}, then final \\boxed{4}", "4", True),
    ],
    "words that judge a boxed value": [
        # `\\text{}` after a value is a unit only if its words are no judgement of the value
        ("\\boxed{42\\text{ wrong}}", "42", False),
        ("\\boxed{42\\text{ is false}}", "42", False),
        ("\\boxed{42\\mathbf{wrong}}", "42", False),
        ("\\boxed{42\\text{ cm}}", "42", True),
        ("\\boxed{42\\mathrm{kg}}", "42", True),
    ],
    "estimates after a cue": [
        # "around five" is an estimate, like `\\approx`: not the exact value the gold is (policy)
        ("I think the answer is probably around five", "5", False),
        ("The answer is approximately 3.14", "3.14", False),
        ("The answer is five", "5", True),
        ("The answer is 3.14", "3.14", True),
    ],
    "unicode superscripts": [
        ("Answer: 162x\u2074", "162x^4", True),  # `x⁴` is `x^4`, not `x4`
        ("Answer: 162x\u2075", "162x^4", False),
        ("The area is 5 m\u00b2.", "5", True),  # an exponent of a unit is no number of its own
    ],
}
CASES = [(category, *case) for category, rows in TABLES.items() for case in rows]


@pytest.mark.parametrize(("category", "completion", "gold", "expected"), CASES)
def test_regression_table(category: str, completion: str, gold: str, expected: bool) -> None:
    verdict = verify(completion, {"answer": gold})
    assert verdict.correct is expected, f"{category}: {verdict.reason} (extracted {verdict.extracted!r})"
    assert verdict.reward == float(expected)
    assert verdict.verifier == "math" and verdict.verifier_version == VERSION and not verdict.timed_out


def test_extraction_rules_in_order() -> None:
    assert extract_answer("first \\boxed{1} then, after checking, \\boxed{\\frac{2}{3}}") == "\\frac{2}{3}"
    assert extract_answer("x = \\boxed{3} and y = \\boxed{4}") == "3, 4"
    assert extract_answer("We try \\boxed{3}.\n\nActually that fails. So \\boxed{4}") == "4"
    assert extract_answer("<think>maybe 3</think><answer>4</answer>") == "4"
    assert extract_answer("so 12 apples.\n#### 12") == "12"
    assert extract_answer("unclosed \\boxed{12") is None  # an unclosed last box is an unfinished answer
    assert extract_answer("No digits here.\nJust words, and more words about nothing at all.") is None
    assert extract_answer("odd") == "odd"


def test_normalisation() -> None:
    assert normalize("$\\left( 3 \\right)$") == "( 3 )"
    assert normalize("\\text{\\textbf{7}}") == "7"
    assert normalize("1,234,567") == "1234567"
    assert normalize("15 \\text{ cm}^2") == "15"


def test_gold_that_cannot_be_parsed_is_cannot_judge() -> None:
    verdict = verify("\\boxed{3}", {"answer": "\\unknownmacro{3}"})
    assert verdict.correct is None and verdict.reward is None and "cannot judge" in verdict.reason
    assert verify("4", {"answer": None}).correct is None
    assert verify("4", {}).correct is None


def test_a_prediction_without_answer_is_wrong() -> None:
    verdict = verify("", {"answer": "3"})
    assert verdict.correct is False and verdict.extracted is None


# ------------------------------------------------------------------------------------------ hostile inputs

HOSTILE = [
    "\\boxed{__import__('os').system('touch /tmp/flywheel-pwned')}",
    "\\boxed{().__class__.__base__.__subclasses__()}",
    "\\boxed{eval('1+1')}",
    "\\boxed{lambda: 2}",
    "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{10^{10^{100}}}",
    "\\boxed{(10^{6})!}",
    "\\boxed{100000!}",
    "\\boxed{\\binom{10^{9}}{5000}}",
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}",
    "\\boxed{" + "\\sqrt{" * 500 + "2" + "}" * 500 + "}",
    "\\boxed{" + "x^" * 3000 + "x}",
    "\\boxed{" + "1+" * 50_000 + "1}",
    "a" * 100_000,
    "$" * 50_000 + "1",
    "\\boxed{" * 20_000,
    "\\boxed{\\sum_{k=1}^{10^{12}} k}",
    "\\boxed{\\begin{pmatrix}" + " & ".join(["1"] * 1000) + "\\end{pmatrix}}",
    "\\boxed{NaN}",
    "\\boxed{nan}",
    "\\boxed{\\infty}",
    "\\boxed{-\\infty}",
    "\\boxed{0/0}",
    "\\boxed{\\frac{1}{0}}",
]


@pytest.mark.parametrize("completion", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_predictions_are_wrong_quickly_and_never_run(completion: str) -> None:
    started = time.perf_counter()
    verdict = verify(completion, {"answer": "2"})
    assert verdict.correct is False, verdict.reason
    assert time.perf_counter() - started < 3.0


def test_infinity_and_nan_golds() -> None:
    assert verify("\\boxed{\\infty}", {"answer": "\\infty"}).correct is True
    assert verify("\\boxed{-\\infty}", {"answer": "\\infty"}).correct is False
    assert verify("\\boxed{5}", {"answer": "NaN"}).correct is not True


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        ("\\boxed{１２}", "12", True),  # full-width digits are digits (NFKC)
        ("\\boxed{−5}", "-5", True),  # unicode minus sign
        ("\\boxed{٣}", "3", False),  # Arabic-Indic digit: not read as 3
        ("\\boxed{х+1}", "x+1", False),  # Cyrillic х is not the Latin x
        ("\\boxed{2×3}", "6", False),  # read as 2 times 3, which is not a number written out
        ("\\boxed{x²}", "x^2", True),
    ],
)
def test_unicode_look_alikes(completion: str, gold: str, expected: bool) -> None:
    assert verify(completion, {"answer": gold}).correct is expected


def test_huge_gold_is_cannot_judge_not_a_hang() -> None:
    started = time.perf_counter()
    correct, reason = judge("2^{2^{2^{2^{2^{2}}}}}", "3")
    assert correct is None and "too large" in reason
    assert time.perf_counter() - started < 1.0


def test_registry_names_known_verifiers_on_unknown_name() -> None:
    assert get_verifier("math") is VERIFIERS["math"]
    with pytest.raises(UnknownVerifierError, match="unknown verifier 'chess'.*known verifiers: .*math"):
        get_verifier("chess")
