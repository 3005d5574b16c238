"""ISO 639 language codes, two letters (639-1) and three (639-2), both ways.

Stream tags name a language in either (``de``, ``deu``; Matroska files often in the
bibliographic ``ger``). The table is ISO 639-1's 184 codes with their 639-2/T codes and
the 20 bibliographic (639-2/B) codes that differ, as Debian's iso-codes has them
(generated once with pycountry 26.2.16): a fixed standard, small enough to keep here
rather than load a package of every language's name in every locale at start-up.
"""

from __future__ import annotations

# two letters -> three (639-2/T)
_PAIRS = (
    "aa:aar ab:abk ae:ave af:afr ak:aka am:amh an:arg ar:ara as:asm av:ava ay:aym az:aze "
    "ba:bak be:bel bg:bul bi:bis bm:bam bn:ben bo:bod br:bre bs:bos ca:cat ce:che ch:cha "
    "co:cos cr:cre cs:ces cu:chu cv:chv cy:cym da:dan de:deu dv:div dz:dzo ee:ewe el:ell "
    "en:eng eo:epo es:spa et:est eu:eus fa:fas ff:ful fi:fin fj:fij fo:fao fr:fra fy:fry "
    "ga:gle gd:gla gl:glg gn:grn gu:guj gv:glv ha:hau he:heb hi:hin ho:hmo hr:hrv ht:hat "
    "hu:hun hy:hye hz:her ia:ina id:ind ie:ile ig:ibo ii:iii ik:ipk io:ido is:isl it:ita "
    "iu:iku ja:jpn jv:jav ka:kat kg:kon ki:kik kj:kua kk:kaz kl:kal km:khm kn:kan ko:kor "
    "kr:kau ks:kas ku:kur kv:kom kw:cor ky:kir la:lat lb:ltz lg:lug li:lim ln:lin lo:lao "
    "lt:lit lu:lub lv:lav mg:mlg mh:mah mi:mri mk:mkd ml:mal mn:mon mr:mar ms:msa mt:mlt "
    "my:mya na:nau nb:nob nd:nde ne:nep ng:ndo nl:nld nn:nno no:nor nr:nbl nv:nav ny:nya "
    "oc:oci oj:oji om:orm or:ori os:oss pa:pan pi:pli pl:pol ps:pus pt:por qu:que rm:roh "
    "rn:run ro:ron ru:rus rw:kin sa:san sc:srd sd:snd se:sme sg:sag sh:hbs si:sin sk:slk "
    "sl:slv sm:smo sn:sna so:som sq:sqi sr:srp ss:ssw st:sot su:sun sv:swe sw:swa ta:tam "
    "te:tel tg:tgk th:tha ti:tir tk:tuk tl:tgl tn:tsn to:ton tr:tur ts:tso tt:tat tw:twi "
    "ty:tah ug:uig uk:ukr ur:urd uz:uzb ve:ven vi:vie vo:vol wa:wln wo:wol xh:xho yi:yid "
    "yo:yor za:zha zh:zho zu:zul "
)
# 639-2/B -> 639-2/T, where the two differ
_BIBLIOGRAPHIC = (
    "tib:bod cze:ces wel:cym ger:deu gre:ell baq:eus per:fas fre:fra arm:hye ice:isl geo:kat "
    "mao:mri mac:mkd may:msa bur:mya dut:nld rum:ron slo:slk alb:sqi chi:zho "
)

THREE = dict(pair.split(":") for pair in _PAIRS.split())
TWO = {three: two for two, three in THREE.items()}
TERMINOLOGY = dict(pair.split(":") for pair in _BIBLIOGRAPHIC.split())
UNDETERMINED = frozenset({"und", "mul", "zxx", "mis", "qaa"})  # no language, or several


def normal(tag: str | None) -> str | None:
    """A language tag as one code: the two letters where ISO 639-1 has them, else the
    639-2/T code; ``en-US`` reads as ``en``. None for no tag, ``und`` and the like, or
    what is not a code."""
    if not tag:
        return None
    code = tag.strip().lower().replace("_", "-").partition("-")[0]
    code = TERMINOLOGY.get(code, code)
    if code in UNDETERMINED or not code.isascii() or not code.isalpha():
        return None
    if len(code) == 2:
        return code if code in THREE else None
    if len(code) == 3:
        return TWO.get(code, code)
    return None


def known(tag: str) -> bool:
    """Whether ``tag`` names a language in the table (639-1, or its 639-2/T or /B)."""
    code = tag.lower()
    return code in THREE or code in TWO or code in TERMINOLOGY
