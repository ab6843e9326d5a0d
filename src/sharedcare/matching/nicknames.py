"""Familiar forms of first names that different systems hold for the same person (Bill for William).

Each group lists a formal name and the forms commonly recorded instead; two names agree as nicknames when they share
a group. The list is deliberately conservative: a form shared by unrelated names (Chris: Christopher, Christine)
sits in both groups, which is safe because sex and date of birth still have to agree.
"""

from __future__ import annotations

_GROUPS = """
william bill will billy liam
robert rob bob bobby robbie bert
richard rich rick dick ricky
james jim jimmy jamie
john jack johnny jon
michael mike mick mickey
christopher chris kit
anthony tony
thomas tom tommy
joseph joe joey
daniel dan danny
matthew matt
alexander alex alec sandy
samuel sam sammy
edward ed ted eddie ned
steven stephen steve stevie
andrew andy drew
benjamin ben benny
nicholas nick nicky
peter pete
frederick fred freddie freddy
harold harry hal
henry harry hank
charles charlie chuck
kenneth ken kenny
gerald gerry
patrick pat paddy
francis frank frankie
timothy tim timmy
jonathan jon jonny
nathaniel nathan nat
oliver olly ollie
archibald archie
alfred alf alfie
leonard len lenny leo
lawrence larry laurie
dennis den
ronald ron ronnie
donald don donnie
mohammed muhammad mohammad mohamed mohamad
elizabeth liz lizzie beth betty eliza libby
margaret maggie peggy marge meg
catherine kate cathy katie kath katherine kathryn
katherine kate katie kathy kathryn catherine
patricia pat trish tricia
susan sue suzanne susie
christine chris christina tina
rebecca becky becca
nicola nicky nichola
jessica jess jessie
jacqueline jackie
deborah debbie debra deb
dorothy dot dottie
isabella bella izzy isabel isobel
charlotte lottie charlie
joanne jo joanna
jennifer jenny jen
victoria vicky tori
samantha sam sammy
alexandra alex sandra
abigail abby abbie
eleanor ellie nell nora
helen nell
sarah sara sally
ann anne anna annie
mary molly polly
frances fran fanny
josephine jo josie
caroline carol carrie
pamela pam
barbara barb babs
valerie val
sophie sophia
aisha ayesha
zainab zaynab
"""


def _index() -> dict[str, frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for n, line in enumerate(_GROUPS.strip().splitlines()):
        for name in line.split():
            groups.setdefault(name, set()).add(n)
    return {name: frozenset(ids) for name, ids in groups.items()}


_GROUP_OF = _index()


def same_name_family(a: str, b: str) -> bool:
    """True when one name is a recorded familiar form of the other (both normalised to lower case)."""
    ga, gb = _GROUP_OF.get(a), _GROUP_OF.get(b)
    return bool(ga and gb and ga & gb)
