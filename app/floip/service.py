"""Flow Results packages of the flows' surveys: finding them, describing them, paging their rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.floip.catalogue import PackageCatalogue, Version
from app.floip.errors import InvalidPackageId, PackageNotFound
from app.floip.keys import FloipKeys
from app.floip.query import MAX_PAGE_SIZE, ResponseQuery
from app.floip.repository import FloipRepository
from app.floip.responses import Row, to_row
from app.floip.surveys import Package, packages
from app.flows.model import FlowDefinition


@dataclass(frozen=True)
class Page:
    """Some rows of a package, and the cursor of the next page (None on the last one)."""

    rows: list[Row]
    next_cursor: str | None


class FloipService:
    """Reads packages: the flows name them, the database holds their published schemas and answers."""

    def __init__(
        self,
        db: AsyncSession,
        flows: Mapping[str, FlowDefinition],
        keys: FloipKeys,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.keys = keys
        self.clock = clock
        self.flows = flows
        self.answers = FloipRepository(db)
        self.catalogue = PackageCatalogue(db)

    def packages(self) -> list[Package]:
        """Every survey of every flow."""
        return packages(self.flows, self.keys)

    def package(self, package_id: str) -> Package:
        """The package with this id; raise `InvalidPackageId` or `PackageNotFound`."""
        try:
            wanted = str(uuid.UUID(package_id))
        except ValueError as error:
            raise InvalidPackageId("a package id is a UUID") from error
        for package in self.packages():
            if package.id == wanted:
                return package
        raise PackageNotFound(f"no package {wanted}")

    async def version(self, package: Package) -> Version:
        """The package's schema, recording the flow's new questions (only flushes: the caller commits)."""
        return await self.catalogue.version(package.flow, package.survey, self.clock())

    async def page(self, package: Package, version: Version, query: ResponseQuery) -> Page:
        """One page of rows in row id order; one extra row is read to know whether another page follows."""
        found = await self.answers.answers(
            package.flow.id,
            package.survey,
            version.questions,
            after=query.after,
            start=query.start,
            end=query.end,
            limit=query.size + 1,
        )
        shown = found[: query.size]
        contacts = self.keys.contacts(package.id)
        rows = [to_row(answer, contacts, version.questions) for answer in shown]
        more = len(found) > query.size
        return Page(rows, self.keys.cursor(package.id, shown[-1].id) if more else None)

    async def all_rows(self, package: Package, version: Version) -> list[Row]:
        """Every row of a package (for the file export), read page by page."""
        rows: list[Row] = []
        query = ResponseQuery(size=MAX_PAGE_SIZE)
        while True:
            page = await self.page(package, version, query)
            rows.extend(page.rows)
            if page.next_cursor is None:
                return rows
            query = ResponseQuery(size=MAX_PAGE_SIZE, after=int(page.rows[-1][1]))
