/* list.h: intrusive circular doubly linked lists (the loop's flush/reap lists, pools, timer slots). */
#ifndef SG_LIST_H
#define SG_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sg_list {
    struct sg_list *next, *prev;
} sg_list_t;

#define SG_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void sg_list_init(sg_list_t *l)
{
    l->next = l->prev = l;
}

static inline bool sg_list_empty(const sg_list_t *l)
{
    return l->next == l;
}

/* A node that was init'ed or removed is "unlinked": it points to itself. */
static inline bool sg_list_linked(const sg_list_t *n)
{
    return n->next != n && n->next != NULL;
}

static inline void sg_list_insert_tail(sg_list_t *head, sg_list_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void sg_list_remove(sg_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

static inline sg_list_t *sg_list_pop(sg_list_t *head)
{
    if (sg_list_empty(head))
        return NULL;
    sg_list_t *n = head->next;
    sg_list_remove(n);
    return n;
}

/* Moves every node of src to the end of dst; src becomes empty. */
static inline void sg_list_splice(sg_list_t *dst, sg_list_t *src)
{
    if (sg_list_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    sg_list_init(src);
}

#endif
