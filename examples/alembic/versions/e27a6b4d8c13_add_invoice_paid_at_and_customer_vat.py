"""add invoice.paid_at and customer.vat_number

Revision ID: e27a6b4d8c13
Revises: 9d3c5a7e1f20
Create Date: 2024-04-02 08:05:19.774210+00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "e27a6b4d8c13"
down_revision: Union[str, None] = "9d3c5a7e1f20"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("invoice", sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customer", sa.Column("vat_number", sa.String(length=32), nullable=True))
    # Backfill: invoices already marked paid get their issue date as payment date.
    op.execute("UPDATE invoice SET paid_at = issued_at WHERE status = 'paid'")
    op.create_index(
        "ix_invoice_unpaid",
        "invoice",
        ["issued_at"],
        postgresql_where=sa.text("paid_at IS NULL AND status = 'issued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_invoice_unpaid", table_name="invoice")
    op.drop_column("customer", "vat_number")
    op.drop_column("invoice", "paid_at")
