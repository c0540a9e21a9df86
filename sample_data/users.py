"""The sample accounts: admin, operator, township leaders, grid workers, departments and an external client.

Every sample password is `onemap`. The hash is computed once and shared by every sample account -- a
shortcut for the sample only (scrypt is slow on purpose, and a county has thousands of grid workers); real
accounts each get their own salt from `geoserver.passwords.hash_password`.
"""

from __future__ import annotations

from geoserver.apikeys import SAMPLE_EXTERNAL_GRANTS
from geoserver.passwords import hash_password
from geoserver.store import UserRecord
from sample_data.county import County

SAMPLE_PASSWORD = "onemap"
DEPARTMENTS = {"religion": "宗教事务局", "ecology": "生态环境局", "emergency": "应急管理局", "urban": "住房和城乡建设局",
               "security": "公安局", "tourism": "文化旅游局", "economy": "发展和改革局", "organisation": "县委组织部",
               "services": "政务服务中心"}


def sample_users(county: County, password_hash: str | None = None) -> list[UserRecord]:
    """Every sample account: one leader per township, one worker per grid, one account per department, and the
    external platform with its per-user grants (SAMPLE_EXTERNAL_GRANTS)."""
    pw = password_hash or hash_password(SAMPLE_PASSWORD)
    everywhere = tuple(t.code for t in county.townships)
    users = [
        UserRecord("admin", "admin", pw, "系统管理员", everywhere),
        UserRecord("operator", "operator", pw, "县运营指挥中心值班员", everywhere),
        UserRecord("external", "external", pw, "外部GIS平台", extra={"grants": SAMPLE_EXTERNAL_GRANTS}),
    ]
    users += [UserRecord(f"leader-{t.code}", "leader", pw, f"{t.name_zh}领导", (t.code,)) for t in county.townships]
    users += [UserRecord(f"dept-{name}", "department", pw, f"班玛县{title}", everywhere, department=name)
              for name, title in DEPARTMENTS.items()]
    users += [UserRecord(f"worker-{g.code}", "worker", pw, f"{g.name}网格员", (g.township_code,), (g.code,))
              for g in county.grids]
    return users
