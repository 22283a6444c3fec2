"""Reusable Qt widgets; each is a view of a state object it is given.

Import the widget modules themselves (``talkstudio.widgets.timeline`` ...): the package imports
nothing, so ``import talkstudio.widgets`` stays cheap and pulls in neither pyqtgraph's OpenGL
module nor QtMultimedia until a view needs them. Every GL view shares one set of shader programs
(pyqtgraph caches them per process): an application that shows ``Landmarks3D`` sets
``Qt.AA_ShareOpenGLContexts`` before it creates its QApplication.
"""
