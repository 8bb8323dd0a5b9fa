"""Give a file SQLite database a connection pool (test/realstack), imported by every service of
the stack that uses a database before it creates its engine.

Debian 12's SQLAlchemy 1.4 gives a file SQLite DB a NullPool: every ORM session opens a new
sqlite3 connection (open the file, the -wal and -shm files, parse the schema, oslo.db's connect
events and ping) and closes it again. Keystone opens ~90 of them to validate one token, so every
authenticated request to it took 0.5-1 s of CPU on this machine, and everything that validates
tokens (Nova, placement, vflink) waited behind it. SQLAlchemy 2.0 uses a QueuePool for file
databases; this does the same on 1.4 (oslo.db then applies its max_pool_size/max_overflow), which
is safe with WAL mode and one thread (or eventlet's green threads) per process.
"""
from sqlalchemy import pool
from sqlalchemy.dialects.sqlite import pysqlite

_orig_get_pool_class = pysqlite.SQLiteDialect_pysqlite.get_pool_class.__func__


def _get_pool_class(cls, url):
    if cls._is_url_file_db(url):
        return pool.QueuePool
    return _orig_get_pool_class(cls, url)


pysqlite.SQLiteDialect_pysqlite.get_pool_class = classmethod(_get_pool_class)

_orig_create_connect_args = pysqlite.SQLiteDialect_pysqlite.create_connect_args


def _create_connect_args(self, url):
    args, kwargs = _orig_create_connect_args(self, url)
    if self._is_url_file_db(url):
        # a pooled connection may be checked out by another thread than the one that opened it
        kwargs.setdefault("check_same_thread", False)
    return args, kwargs


pysqlite.SQLiteDialect_pysqlite.create_connect_args = _create_connect_args
