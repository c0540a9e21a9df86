"""Plausible names for the sample county: places and people in the style of a Golog Tibetan county."""

from __future__ import annotations

import numpy as np

# Syllables of Tibetan place names as they are written in Chinese.
_PLACE = ("多", "贡", "玛", "卡", "吉", "达", "扎", "西", "日", "塘", "尔", "科", "曲", "龙", "哇", "秀", "格",
          "德", "昂", "加", "洛", "然", "美", "则", "桑", "宁", "仓", "果", "前", "阿", "什", "姜", "钦", "莫",
          "巴", "索", "隆", "邦", "哈", "热", "拉", "嘎", "俄", "泽", "知", "亚", "灯", "江", "赛", "来")
_COMMUNITIES = ("团结", "和平", "幸福", "红旗", "民主", "吉祥", "友谊", "新城", "河滨", "阳光", "金桥", "光明")
_MALE = ("才让", "扎西", "多杰", "索南", "尼玛", "旦增", "桑杰", "更登", "加央", "仁青", "洛桑", "达哇", "昂秀",
         "久美", "公保", "贡却", "东智", "华旦", "求培", "周加", "俄日", "拉加", "夏吾", "完德")
_FEMALE = ("卓玛", "拉毛", "措毛", "央金", "德吉", "卓措", "才措", "拉姆", "吉毛", "娘吉", "多吉措", "仁增措")
_HAN_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "马", "赵", "韩", "冶", "祁", "何")
_HAN_GIVEN = ("建国", "海燕", "志强", "丽", "军", "晓东", "文华", "玉兰", "德明", "永红", "占福", "秀英")


class NameBook:
    """A deterministic source of names that never gives the same place name twice."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._used: set[str] = set()

    def _pick(self, seq: tuple[str, ...]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    def place(self, suffix: str, syllables: tuple[int, int] = (2, 3)) -> str:
        """A new Tibetan-style place name ending with `suffix` (村, 寺, …)."""
        for _ in range(1000):
            n = int(self.rng.integers(syllables[0], syllables[1] + 1))
            name = "".join(self._pick(_PLACE) for _ in range(n)) + suffix
            if name not in self._used and len(set(name[:-len(suffix) or None])) > 1:
                self._used.add(name)
                return name
        raise RuntimeError("ran out of place names")  # pragma: no cover - 50³ names are plenty

    def community(self) -> str:
        """A new town community (社区) name."""
        for name in _COMMUNITIES:
            if name + "社区" not in self._used:
                self._used.add(name + "社区")
                return name + "社区"
        return self.place("社区")

    def person(self) -> str:
        """A person's name: mostly Tibetan, some Han."""
        r = self.rng.random()
        if r < 0.15:
            return self._pick(_HAN_SURNAMES) + self._pick(_HAN_GIVEN)
        if r < 0.55:
            return self._pick(_MALE) + self._pick(_MALE)
        if r < 0.75:
            return self._pick(_MALE) + self._pick(_FEMALE)
        return self._pick(_FEMALE)

    def phone(self) -> str:
        """A Banma landline (area code 0975)."""
        return f"0975-83{int(self.rng.integers(10000, 100000)):05d}"
