"""create invoice table

Revision ID: 9d3c5a7e1f20
Revises: 4b1f0e8c2a71
Create Date: 2024-03-11 14:40:02.551907+00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "9d3c5a7e1f20"
down_revision: Union[str, None] = "4b1f0e8c2a71"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "invoice",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="EUR", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column(
            "issued_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_cents >= 0", name="ck_invoice_amount_positive"),
        sa.CheckConstraint(
            "status IN ('draft', 'issued', 'paid', 'void')", name="ck_invoice_status"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name="fk_invoice_customer_id_customer",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_invoice"),
        sa.UniqueConstraint("number", name="uq_invoice_number"),
    )
    op.create_index("ix_invoice_customer_id", "invoice", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_invoice_customer_id", table_name="invoice")
    op.drop_table("invoice")
