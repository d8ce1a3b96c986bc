import pytest

from mmsent.config import TextConfig
from mmsent.data.text import TextDecodeError, decode_bytes, normalize_tweet, split_hashtag, tokenize


def test_decoding_order_utf8_gbk_cp1252():
    assert decode_bytes("naïve 😀".encode("utf-8")).encoding == "utf-8"
    gbk = decode_bytes("我爱你…".encode("gbk"))
    assert (gbk.text, gbk.encoding) == ("我爱你…", "gbk")
    cp = decode_bytes(b"Caf\xe9 \x80")  # invalid UTF-8 and GBK, valid cp1252
    assert (cp.text, cp.encoding) == ("Café €", "cp1252")


def test_bom_is_dropped_and_wrong_type_rejected():
    assert decode_bytes(b"\xef\xbb\xbfhi").text == "hi"
    with pytest.raises(TypeError, match="expected bytes"):
        decode_bytes("already text")


def test_undecodable_bytes_raise_instead_of_replacing():
    with pytest.raises(TextDecodeError, match="none of utf-8"):
        decode_bytes(b"\xff\xfe\x81", encodings=("utf-8", "ascii"))


@pytest.mark.parametrize("tag,expected", [
    ("TeamTrudeau", "Team Trudeau"), ("elxn42", "elxn 42"), ("ILoveNY", "I Love NY"),
    ("happy_birthday", "happy birthday"), ("lol", "lol"),
])
def test_hashtag_split(tag, expected):
    assert split_hashtag(tag) == expected


def test_tricky_tweet():
    raw = "RT @Some_User: Sooooo happy!!!!! 😂 #BestDayEver &amp;amp; more at https://t.co/AbC?x=1 ..."
    assert normalize_tweet(raw) == (
        "@user : Soo happy!! face with tears of joy Best Day Ever & more at url ...")


def test_options_change_the_output_and_are_deterministic():
    raw = "@a Loooove it 😍 #NoFilter www.example.com"
    cfg = TextConfig(urls="", mentions="", emoji="drop", split_hashtags=False, lowercase=True)
    assert normalize_tweet(raw, cfg) == "loove it #nofilter"
    assert normalize_tweet(raw) == normalize_tweet(raw)
    assert normalize_tweet(raw, TextConfig(emoji="keep")).count("😍") == 1


def test_control_characters_and_empty_text():
    assert normalize_tweet("a\x00b\x1bc") == "a b c"
    assert normalize_tweet("   ") == ""
    with pytest.raises(TypeError):
        normalize_tweet(None)


def test_email_is_not_a_mention_and_tokenize():
    assert "@user" not in normalize_tweet("mail me at bob@example.com")
    assert tokenize("@user I can't wait!!") == ["@user", "i", "can't", "wait", "!", "!"]
