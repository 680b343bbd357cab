/*
 * silver_insert.c - a chunk's new tweets into silver.tweets the way COPY writes rows: the
 * heap in pages at a time (table_multi_insert) and the index entries after, instead of one
 * executor INSERT ... ON CONFLICT DO NOTHING per row with its speculative insertion.
 *
 * Which tweets silver already has (or has deleted) is read first by probing the primary
 * keys with a dirty snapshot; the rest are written in tweet_id order (the order every
 * writer takes, so two batches with tweets in common wait for each other instead of
 * deadlocking).  The rows go in inside a subtransaction: when another transaction stored
 * one of the ids between the probe and the write, the unique index says so, the
 * subtransaction is rolled back and the caller takes the SQL path, which waits for and
 * skips such rows as it always did.  It does the same when the probe meets an id that
 * another transaction is writing, and whenever silver.tweets has something only the
 * executor applies (row triggers, row security, CHECK constraints, generated columns).
 */
#include "tweetlake.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

/* rows handed to table_multi_insert at a time (COPY's MAX_BUFFERED_TUPLES) */
#define MULTI_ROWS 1000

/* A unique index on one column, probed by key with a dirty snapshot. */
typedef struct Probe
{
	Relation	heap;
	Relation	index;
	ScanKeyData key;
	SnapshotData dirty;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	LOCKMODE	lockmode;
} Probe;

static bool
probe_open(Probe *p, Relation heap, Oid indexoid, LOCKMODE lockmode)
{
	Oid			op;

	p->heap = heap;
	p->lockmode = lockmode;
	p->index = index_open(indexoid, lockmode);
	if (p->index->rd_rel->relam != BTREE_AM_OID || p->index->rd_index->indnkeyatts != 1 ||
		!p->index->rd_index->indisunique || p->index->rd_indexprs != NIL ||
		p->index->rd_opcintype[0] != TEXTOID)
	{
		index_close(p->index, p->lockmode);
		return false;
	}
	op = get_opfamily_member(p->index->rd_opfamily[0], p->index->rd_opcintype[0],
							 p->index->rd_opcintype[0], BTEqualStrategyNumber);
	if (!OidIsValid(op))
	{
		index_close(p->index, p->lockmode);
		return false;
	}
	ScanKeyEntryInitialize(&p->key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   p->index->rd_indcollation[0], get_opcode(op), (Datum) 0);
	InitDirtySnapshot(p->dirty);
	p->scan = index_beginscan(heap, p->index, &p->dirty, 1, 0);
	p->slot = table_slot_create(heap, NULL);
	return true;
}

/* 1: the key is stored (by a committed transaction or this one), 0: it is not, -1: another
 * transaction in progress is writing or deleting it */
static int
probe_key(Probe *p, Datum key)
{
	int			found = 0;

	p->key.sk_argument = key;
	index_rescan(p->scan, &p->key, 1, NULL, 0);
	while (index_getnext_slot(p->scan, ForwardScanDirection, p->slot))
	{
		if (TransactionIdIsValid(p->dirty.xmin) || TransactionIdIsValid(p->dirty.xmax))
			return -1;
		found = 1;
	}
	return found;
}

static void
probe_close(Probe *p)
{
	index_endscan(p->scan);
	ExecDropSingleTupleTableSlot(p->slot);
	index_close(p->index, p->lockmode);
}

/* The primary key of silver.<name>, if it is the one-column text key it is made with. */
static Oid
pkey_of(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);	/* sets rd_pkindex */

	list_free(indexes);
	return rel->rd_pkindex;
}

typedef struct Rows
{
	HeapTuple	tup;
	Datum		id;
	int			index;			/* in the caller's array */
} Rows;

static int
rows_by_id(const void *a, const void *b)
{
	text	   *x = DatumGetTextPP(((const Rows *) a)->id);
	text	   *y = DatumGetTextPP(((const Rows *) b)->id);
	int			lx = VARSIZE_ANY_EXHDR(x);
	int			ly = VARSIZE_ANY_EXHDR(y);
	int			c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));

	return c != 0 ? c : (lx > ly) - (lx < ly);
}

/* What the write needs, made once per call. */
typedef struct Target
{
	Relation	rel;
	TupleDesc	src;
	int			natts;
	int		   *from;			/* per silver attribute: source column, or -1 */
	ExprState **dflt;			/* per silver attribute without source: its
								 * default */
	Rows	   *rows;
	int			nrows;
} Target;

static void
write_rows(void *arg)
{
	Target	   *t = (Target *) arg;
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	ExprContext *econtext = GetPerTupleExprContext(estate);
	CommandId	cid = GetCurrentCommandId(true);
	BulkInsertState bis = GetBulkInsertState();
	TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * Min(t->nrows, MULTI_ROWS));
	Datum	   *sv = palloc(sizeof(Datum) * t->src->natts);
	bool	   *sn = palloc(sizeof(bool) * t->src->natts);
	int			nslots = Min(t->nrows, MULTI_ROWS);

	InitResultRelInfo(rri, t->rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (int i = 0; i < nslots; i++)
		slots[i] = table_slot_create(t->rel, NULL);

	for (int done = 0; done < t->nrows; done += nslots)
	{
		int			n = Min(nslots, t->nrows - done);
		MemoryContext old;

		for (int i = 0; i < n; i++)
		{
			TupleTableSlot *s = slots[i];

			ExecClearTuple(s);
			heap_deform_tuple(t->rows[done + i].tup, t->src, sv, sn);
			for (int a = 0; a < t->natts; a++)
			{
				if (t->from[a] >= 0)
				{
					s->tts_values[a] = sv[t->from[a]];
					s->tts_isnull[a] = sn[t->from[a]];
				}
				else if (t->dflt[a] != NULL)
					s->tts_values[a] = ExecEvalExprSwitchContext(t->dflt[a], econtext,
																 &s->tts_isnull[a]);
				else
				{
					s->tts_values[a] = (Datum) 0;
					s->tts_isnull[a] = true;
				}
				if (s->tts_isnull[a] && TupleDescAttr(t->rel->rd_att, a)->attnotnull)
					ereport(ERROR,
							(errcode(ERRCODE_NOT_NULL_VIOLATION),
							 errmsg("null value in column \"%s\" of relation \"silver.tweets\" violates not-null constraint",
									NameStr(TupleDescAttr(t->rel->rd_att, a)->attname))));
			}
			ExecStoreVirtualTuple(s);
		}
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		table_multi_insert(t->rel, slots, n, cid, 0, bis);
		MemoryContextSwitchTo(old);
		for (int i = 0; i < n; i++)
			list_free(ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL));
		ResetPerTupleExprContext(estate);
	}

	for (int i = 0; i < nslots; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	FreeBulkInsertState(bis);
	table_finish_bulk_insert(t->rel, 0);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/* Can rows go in without the executor: nothing on the table that only it applies? */
static bool
plain_table(Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;

	return rel->rd_rel->relkind == RELKIND_RELATION &&
		rel->trigdesc == NULL &&
		check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED &&
		(constr == NULL || (constr->num_check == 0 && !constr->has_generated_stored)) &&
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) == ACLCHECK_OK;
}

/*
 * Writes the rows of tups[0..n) (of row type src, tweet_id in column id_att) that silver
 * neither has nor (check_deleted) deleted; isnew[i] says which were written.  False: the
 * caller writes them the SQL way (nothing was written).
 */
bool
tl_silver_multi_insert(TupleDesc src, int id_att, HeapTuple *tups, int n, bool check_deleted,
					   bool *isnew)
{
	Oid			nsp = get_namespace_oid("silver", false);
	Oid			relid = get_relname_relid("tweets", nsp);
	Oid			delid = check_deleted ? get_relname_relid("deleted_tweets", nsp) : InvalidOid;
	Relation	del = NULL;
	Probe		pk,
				dk;
	bool		have_dk = false;
	Target		t;
	bool		ok = true;
	ErrorData  *edata;

	if (!OidIsValid(relid) || (check_deleted && !OidIsValid(delid)))
		return false;
	memset(isnew, 0, sizeof(bool) * n);
	t.rel = table_open(relid, RowExclusiveLock);
	if (!plain_table(t.rel) || !OidIsValid(pkey_of(t.rel)) ||
		!probe_open(&pk, t.rel, t.rel->rd_pkindex, RowExclusiveLock))
	{
		table_close(t.rel, NoLock);
		return false;
	}
	if (check_deleted)
	{
		del = table_open(delid, AccessShareLock);
		have_dk = OidIsValid(pkey_of(del)) && probe_open(&dk, del, del->rd_pkindex, AccessShareLock);
		ok = have_dk;
	}

	/* the column each silver attribute takes, or its default */
	t.src = src;
	t.natts = RelationGetDescr(t.rel)->natts;
	t.from = palloc(sizeof(int) * t.natts);
	t.dflt = palloc0(sizeof(ExprState *) * t.natts);
	for (int a = 0; ok && a < t.natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(t.rel->rd_att, a);

		t.from[a] = -1;
		if (att->attisdropped)
			continue;
		for (int s = 0; s < src->natts; s++)
		{
			Form_pg_attribute sa = TupleDescAttr(src, s);

			if (!sa->attisdropped && strcmp(NameStr(sa->attname), NameStr(att->attname)) == 0)
			{
				t.from[a] = s;
				ok = sa->atttypid == att->atttypid;
				break;
			}
		}
		if (t.from[a] < 0)
		{
			Node	   *expr = build_column_default(t.rel, a + 1);

			if (expr != NULL)
				t.dflt[a] = ExecInitExpr(expression_planner((Expr *) expr), NULL);
		}
	}

	/* which are new: probe every key (the ids of one chunk are distinct) */
	t.rows = palloc(sizeof(Rows) * Max(n, 1));
	t.nrows = 0;
	for (int i = 0; ok && i < n; i++)
	{
		bool		isnull;
		Datum		id = heap_getattr(tups[i], id_att + 1, src, &isnull);
		int			stored;

		if (isnull)
		{
			ok = false;
			break;
		}
		stored = probe_key(&pk, id);
		if (stored == 0 && have_dk)
			stored = probe_key(&dk, id);
		if (stored < 0)
			ok = false;
		else if (stored == 0)
		{
			t.rows[t.nrows].tup = tups[i];
			t.rows[t.nrows].id = id;
			t.rows[t.nrows].index = i;
			t.nrows++;
		}
	}
	probe_close(&pk);
	if (have_dk)
		probe_close(&dk);
	if (del != NULL)
		table_close(del, NoLock);

	if (ok && t.nrows > 0)
	{
		qsort(t.rows, t.nrows, sizeof(Rows), rows_by_id);
		edata = tl_try_subtransaction(write_rows, &t, CurrentMemoryContext);
		if (edata != NULL)
		{
			if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
				ReThrowError(edata);
			ok = false;			/* written meanwhile by another transaction */
		}
		else
			CommandCounterIncrement();
	}
	if (ok)
		for (int i = 0; i < t.nrows; i++)
			isnew[t.rows[i].index] = true;
	table_close(t.rel, NoLock);
	return ok;
}
