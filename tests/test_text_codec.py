"""The shared tokenizer is used from many gRPC threads at once."""

from concurrent.futures import ThreadPoolExecutor

from backend.text_codec import TextCodec
from tests.tiny_model import make_tokenizer


def test_concurrent_encode_decode_gives_correct_results():
    codec = TextCodec(make_tokenizer())
    texts = [f"question {i}: héllo wörld 世界 🎉 {'x' * (i % 50)}" for i in range(64)]

    def round_trip(text: str) -> bool:
        ids = codec.encode_chat([{"role": "user", "content": text}])
        return text in codec.decode(ids) and codec.decode(codec.encode(text)) == text

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(round_trip, texts * 20))


def test_chat_template_ends_with_assistant_header():
    codec = TextCodec(make_tokenizer())
    text = codec.render_chat([{"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
