"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 23:44:34.558813
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import persistence.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('ref_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('args', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('result', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_log_ref_id'), 'audit_log', ['ref_id'], unique=False)
    op.create_index(op.f('ix_audit_log_ts'), 'audit_log', ['ts'], unique=False)
    op.create_table('confirmations',
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('args', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('ref_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('approvals_needed', sa.Integer(), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('used_at', persistence.types.UTCDateTime(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    op.create_index(op.f('ix_confirmations_expires_at'), 'confirmations', ['expires_at'], unique=False)
    op.create_table('equity_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('equity', persistence.types.Money(), nullable=False),
    sa.Column('cash', persistence.types.Money(), nullable=False),
    sa.Column('positions_value', persistence.types.Money(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_equity_snapshots_ts'), 'equity_snapshots', ['ts'], unique=False)
    op.create_table('fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('fill_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('client_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('venue_order_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('qty', persistence.types.Money(), nullable=False),
    sa.Column('price', persistence.types.Money(), nullable=False),
    sa.Column('fee', persistence.types.Money(), nullable=False),
    sa.Column('fee_currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('fee_quote', persistence.types.Money(), nullable=False),
    sa.Column('liquidity', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('ts', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('venue', 'fill_id', name='uq_fills_venue_fill')
    )
    op.create_index(op.f('ix_fills_client_order_id'), 'fills', ['client_order_id'], unique=False)
    op.create_index(op.f('ix_fills_pair'), 'fills', ['pair'], unique=False)
    op.create_index(op.f('ix_fills_ts'), 'fills', ['ts'], unique=False)
    op.create_table('heartbeats',
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('group_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('started_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('instance_id')
    )
    op.create_index(op.f('ix_heartbeats_group_name'), 'heartbeats', ['group_name'], unique=False)
    op.create_index(op.f('ix_heartbeats_last_seen'), 'heartbeats', ['last_seen'], unique=False)
    op.create_table('job_runs',
    sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('scheduled_for', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('started_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('finished_at', persistence.types.UTCDateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.PrimaryKeyConstraint('job', 'scheduled_for')
    )
    op.create_table('leases',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('acquired_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ts', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount', persistence.types.Money(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ledger_ts'), 'ledger', ['ts'], unique=False)
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('venue_order_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('order_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('qty', persistence.types.Money(), nullable=False),
    sa.Column('limit_price', persistence.types.Money(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('filled_qty', persistence.types.Money(), nullable=False),
    sa.Column('avg_price', persistence.types.Money(), nullable=True),
    sa.Column('fee', persistence.types.Money(), nullable=False),
    sa.Column('fee_currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('submitted_at', persistence.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('client_order_id')
    )
    op.create_index(op.f('ix_orders_pair'), 'orders', ['pair'], unique=False)
    op.create_index(op.f('ix_orders_position_id'), 'orders', ['position_id'], unique=False)
    op.create_index(op.f('ix_orders_status'), 'orders', ['status'], unique=False)
    op.create_index(op.f('ix_orders_venue_order_id'), 'orders', ['venue_order_id'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('silent', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('claimed_until', persistence.types.UTCDateTime(), nullable=True),
    sa.Column('delivered_at', persistence.types.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_due', 'outbox', ['status', 'destination', 'id'], unique=False)
    op.create_table('paper_balances',
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('total', persistence.types.Money(), nullable=False),
    sa.Column('locked', persistence.types.Money(), nullable=False),
    sa.PrimaryKeyConstraint('venue', 'currency')
    )
    op.create_table('paper_fills',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('fill_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('client_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('venue_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('qty', persistence.types.Money(), nullable=False),
    sa.Column('price', persistence.types.Money(), nullable=False),
    sa.Column('fee', persistence.types.Money(), nullable=False),
    sa.Column('fee_currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('liquidity', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('ts', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('fill_id')
    )
    op.create_index(op.f('ix_paper_fills_client_order_id'), 'paper_fills', ['client_order_id'], unique=False)
    op.create_table('paper_orders',
    sa.Column('client_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('venue', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('venue_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('side', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('order_type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('qty', persistence.types.Money(), nullable=False),
    sa.Column('limit_price', persistence.types.Money(), nullable=True),
    sa.Column('filled_qty', persistence.types.Money(), nullable=False),
    sa.Column('filled_cost', persistence.types.Money(), nullable=False),
    sa.Column('fee', persistence.types.Money(), nullable=False),
    sa.Column('fee_currency', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('reject_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('client_order_id'),
    sa.UniqueConstraint('venue_order_id')
    )
    op.create_index(op.f('ix_paper_orders_status'), 'paper_orders', ['status'], unique=False)
    op.create_table('positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pair', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('qty', persistence.types.Money(), nullable=False),
    sa.Column('entry_qty', persistence.types.Money(), nullable=False),
    sa.Column('entry_cost', persistence.types.Money(), nullable=False),
    sa.Column('entry_fees', persistence.types.Money(), nullable=False),
    sa.Column('exit_qty', persistence.types.Money(), nullable=False),
    sa.Column('exit_value', persistence.types.Money(), nullable=False),
    sa.Column('exit_fees', persistence.types.Money(), nullable=False),
    sa.Column('realized_pnl', persistence.types.Money(), nullable=False),
    sa.Column('stop_price', persistence.types.Money(), nullable=True),
    sa.Column('take_profit', persistence.types.Money(), nullable=True),
    sa.Column('trailing_pct', persistence.types.Money(), nullable=True),
    sa.Column('high_water', persistence.types.Money(), nullable=True),
    sa.Column('strategy', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('exit_reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('opened_at', persistence.types.UTCDateTime(), nullable=False),
    sa.Column('closed_at', persistence.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_positions_pair'), 'positions', ['pair'], unique=False)
    op.create_index(op.f('ix_positions_status'), 'positions', ['status'], unique=False)
    op.create_table('processed_updates',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('update_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('instance_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('processed_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'update_id')
    )
    op.create_index(op.f('ix_processed_updates_processed_at'), 'processed_updates', ['processed_at'], unique=False)
    op.create_table('role_grants',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('granted_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('granted_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'user_id')
    )
    op.create_table('runtime_values',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('updated_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('trading_state',
    sa.Column('group_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('changed_at', persistence.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('group_name')
    )


def downgrade() -> None:
    op.drop_table('trading_state')
    op.drop_table('runtime_values')
    op.drop_table('role_grants')
    op.drop_index(op.f('ix_processed_updates_processed_at'), table_name='processed_updates')
    op.drop_table('processed_updates')
    op.drop_index(op.f('ix_positions_status'), table_name='positions')
    op.drop_index(op.f('ix_positions_pair'), table_name='positions')
    op.drop_table('positions')
    op.drop_index(op.f('ix_paper_orders_status'), table_name='paper_orders')
    op.drop_table('paper_orders')
    op.drop_index(op.f('ix_paper_fills_client_order_id'), table_name='paper_fills')
    op.drop_table('paper_fills')
    op.drop_table('paper_balances')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_table('outbox')
    op.drop_index(op.f('ix_orders_venue_order_id'), table_name='orders')
    op.drop_index(op.f('ix_orders_status'), table_name='orders')
    op.drop_index(op.f('ix_orders_position_id'), table_name='orders')
    op.drop_index(op.f('ix_orders_pair'), table_name='orders')
    op.drop_table('orders')
    op.drop_index(op.f('ix_ledger_ts'), table_name='ledger')
    op.drop_table('ledger')
    op.drop_table('leases')
    op.drop_table('job_runs')
    op.drop_index(op.f('ix_heartbeats_last_seen'), table_name='heartbeats')
    op.drop_index(op.f('ix_heartbeats_group_name'), table_name='heartbeats')
    op.drop_table('heartbeats')
    op.drop_index(op.f('ix_fills_ts'), table_name='fills')
    op.drop_index(op.f('ix_fills_pair'), table_name='fills')
    op.drop_index(op.f('ix_fills_client_order_id'), table_name='fills')
    op.drop_table('fills')
    op.drop_index(op.f('ix_equity_snapshots_ts'), table_name='equity_snapshots')
    op.drop_table('equity_snapshots')
    op.drop_index(op.f('ix_confirmations_expires_at'), table_name='confirmations')
    op.drop_table('confirmations')
    op.drop_index(op.f('ix_audit_log_ts'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_ref_id'), table_name='audit_log')
    op.drop_table('audit_log')
